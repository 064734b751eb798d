# s2s socket server on an NVIDIA GPU (x86-64, CUDA 12).
#
#   docker build -t s2s:cuda .
#   docker run --rm --gpus all -p 127.0.0.1:12345:12345 -p 127.0.0.1:12346:12346 -v s2s-cache:/cache s2s:cuda
#
# or `docker compose up` (docker-compose.yml). The README's "Docker" section documents every project
# command this file runs; tests/test_docker_files.py holds the two together.
#
# torch: the base image ships a CUDA build of torch. requirements.txt pins torch==2.13.0, the CPU
# wheel of the dev machines, so that one line is filtered out and a constraints file holds torch at
# the image's own version: no requirement can make pip swap the CUDA build for another torch.

ARG PYTORCH_TAG=2.8.0-cuda12.8-cudnn9

# ---- build stage: llama-cpp-python compiled against CUDA (nvcc is only in the devel image) ----
FROM pytorch/pytorch:${PYTORCH_TAG}-devel AS llama-build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
# The same version spec as requirements.txt. GGML_NATIVE=OFF: the CPU code must run on the host
# that runs the image, not only on the one that built it. The build has no GPU driver, so
# libcuda.so.1 is missing at link time; --allow-shlib-undefined lets llama.cpp's executables link
# anyway (the driver library is mounted into the container at run time by the NVIDIA runtime).
RUN grep '^llama-cpp-python' requirements.txt > /tmp/llama.txt \
    && CMAKE_ARGS="-DGGML_CUDA=on -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined" pip wheel --no-cache-dir --no-deps --wheel-dir /wheels -r /tmp/llama.txt

# ---- runtime stage ----
FROM pytorch/pytorch:${PYTORCH_TAG}-runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# libsndfile1: soundfile; libportaudio2: sounddevice (loaded on import, even in socket mode);
# libgomp1: OpenMP of the llama.cpp build (the runtime image has no compiler runtime of its own).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libsndfile1 libportaudio2 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY --from=llama-build /wheels /wheels
COPY requirements.txt .
RUN grep -v -e '^torch==' -e '^llama-cpp-python' requirements.txt > /tmp/req.txt \
    && python -c 'import torch; print("torch==" + torch.__version__)' > /tmp/constraints.txt \
    && pip install --no-cache-dir -c /tmp/constraints.txt -r /tmp/req.txt /wheels/llama_cpp_python-*.whl \
    && rm -rf /wheels /tmp/req.txt /tmp/constraints.txt

# The CUDA libraries of this image (cuBLAS, cuDNN, cudart) are pip packages under site-packages/nvidia,
# found by torch through its rpath but by nobody else: put them on the loader path for llama.cpp
# and CTranslate2 (faster-whisper), and fail the build here rather than at the first request.
# (grep without -q reads all of ldconfig's output: no SIGPIPE for pipefail to trip on.)
RUN python -c 'import pathlib, nvidia; print("\n".join(str(p) for r in nvidia.__path__ for p in sorted(pathlib.Path(r).glob("*/lib"))))' \
        > /etc/ld.so.conf.d/s2s-nvidia-pip.conf \
    && ldconfig \
    && ldconfig -p | grep 'libcublas\.so\.12' >/dev/null \
    && ldconfig -p | grep 'libcudnn\.so\.9' >/dev/null

COPY . .

# Model cache: packaged checkpoints split over several pip packages are joined once into
# $S2S_CACHE_DIR (models/packaged.py), hub models land under $HF_HOME. One volume keeps both
# across container restarts.
ENV S2S_CACHE_DIR=/cache \
    HF_HOME=/cache \
    PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 s2s \
    && mkdir -p /cache \
    && chown s2s /cache
VOLUME /cache
# Numeric, so the host and Kubernetes can tell it is not root without reading /etc/passwd.
USER 10001

EXPOSE 12345 12346 9100
# Inside a container the server must bind 0.0.0.0: 127.0.0.1 there is the container's own loopback,
# which the published ports (-p, compose `ports:`) cannot reach. The server logs a warning that the
# port is open when it binds a non-loopback address; that is expected here. Who can actually reach
# the ports is decided where they are published (compose publishes on the host's 127.0.0.1 unless
# S2S_BIND says otherwise).
# Port 9100 serves /metrics, /healthz and /readyz (compose's healthchecks, Prometheus on the container
# network); compose does not publish it.
ENTRYPOINT ["python", "s2s_pipeline.py", "--mode", "socket", "--recv_host", "0.0.0.0", "--send_host", "0.0.0.0", \
            "--metrics_port", "9100", "--metrics_host", "0.0.0.0"]
# STT and LLM on the GPU; Piper stays on the CPU (it needs onnxruntime-gpu for CUDA and is fast anyway).
# Arguments given to `docker run IMAGE ...` or compose's `command:` replace this line.
CMD ["--stt_device", "cuda", "--stt_compute_type", "float16", "--lm_device", "cuda"]
