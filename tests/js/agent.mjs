// A voice agent on the OpenAI Agents SDK for JavaScript, pointed at s2s's realtime mode.
//
//   node agent.mjs PORT SPEECH.pcm [API_KEY]
//
// A RealtimeAgent with one tool() (get_weather, which answers "hail, 9 degrees"), in a
// RealtimeSession with the SDK's default configuration (WebSocket transport, semantic_vad,
// its default session fields). SPEECH.pcm (raw 16-bit mono 24 kHz) is streamed at real-time
// pace, then silence. It waits for the answer that follows the tool's output and prints one
// JSON object: the error events seen, the tool calls run, the assistant's transcripts and the
// server event types, in order.
import { readFileSync } from 'node:fs';
import { RealtimeAgent, RealtimeSession, tool } from '@openai/agents-realtime';
import { z } from 'zod';

const [port, speechPath, apiKey = 'none'] = process.argv.slice(2);
const RATE = 24000;
const FRAME = (RATE / 50) * 2; // 20 ms of PCM16

const toolCalls = [];
const getWeather = tool({
  name: 'get_weather',
  description: "Get today's weather forecast for a city.",
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => {
    toolCalls.push({ name: 'get_weather', city });
    return JSON.stringify({ city, forecast: 'hail', high_celsius: 9 });
  },
});
const agent = new RealtimeAgent({
  name: 'Assistant',
  instructions: 'You are a voice assistant. Answer in one short sentence.',
  tools: [getWeather],
});
const session = new RealtimeSession(agent);

const errors = [];
const eventTypes = [];
let responsesDone = 0;
let answeredAfterTool = null;
session.on('error', (error) => errors.push(String(error?.error?.message ?? error?.error ?? error)));
session.on('transport_event', (event) => {
  eventTypes.push(event.type);
  if (event.type === 'error') errors.push(JSON.stringify(event.error ?? event));
  if (event.type === 'response.done') {
    responsesDone += 1;
    if (toolCalls.length > 0 && event.response?.output?.some((item) => item.type === 'message')) {
      answeredAfterTool = event.response;
    }
  }
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function streamAudio(pcm, silenceSeconds) {
  const began = Date.now();
  let sent = 0;
  const send = async (chunk) => {
    const copy = new Uint8Array(chunk).buffer; // a fresh ArrayBuffer of exactly the chunk
    session.sendAudio(copy);
    sent += 20;
    const wait = began + sent - Date.now();
    if (wait > 0) await sleep(wait);
  };
  for (let start = 0; start < pcm.length; start += FRAME) await send(pcm.subarray(start, start + FRAME));
  const silence = new Uint8Array(FRAME);
  for (let i = 0; i < (silenceSeconds * 1000) / 20; i += 1) await send(silence);
}

async function main() {
  await session.connect({ apiKey, url: `ws://127.0.0.1:${port}/v1/realtime` });
  await sleep(500); // the session.update goes out first
  await streamAudio(readFileSync(speechPath), 1.5);
  const deadline = Date.now() + 180000;
  while (!answeredAfterTool && Date.now() < deadline) await sleep(100);
  await sleep(300);
  const transcripts = session.history
    .filter((item) => item.type === 'message' && item.role === 'assistant')
    .map((item) => item.content.map((part) => part.transcript ?? part.text ?? '').join(' '));
  process.stdout.write(
    JSON.stringify({ errors, toolCalls, transcripts, responsesDone, answered: Boolean(answeredAfterTool), eventTypes }) +
      '\n',
  );
  session.close();
  process.exit(0);
}

main().catch((error) => {
  const fatal = error?.stack ?? (typeof error === 'object' ? JSON.stringify(error) : String(error));
  process.stdout.write(JSON.stringify({ fatal, errors, eventTypes }) + '\n');
  process.exit(1);
});
