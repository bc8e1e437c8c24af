# Two commands set everything up on a fresh Debian machine with Python 3.11+:
#   make demo   installs, builds an index from samples/ and checks a repost
#   make test   installs and runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   := .demo

.PHONY: install system-deps bench-deps demo test bench-hash bench-accuracy bench-local-features bench-speed clean

# ffmpeg/ffprobe from Debian when we may install packages; otherwise the
# static ffmpeg inside the imageio-ffmpeg wheel is used (no ffprobe needed).
# The Python dependencies go into .venv, so `make test` needs no root.
system-deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's ffmpeg"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else echo "no ffmpeg on PATH and no root: using the one shipped in imageio-ffmpeg"; fi; \
	fi
	@# The tests burn meme text into a clip with ffmpeg's drawtext.
	@if ! fc-match -f '%{file}' 'DejaVu Sans:bold' 2>/dev/null | grep -qi dejavu \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core fontconfig >/dev/null; \
	fi
	@# Headless Chromium renders the HTML report in the tests.
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium (for the HTML report tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

$(BIN)/provenance: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: system-deps $(BIN)/provenance

demo: install
	rm -rf $(DEMO)
	$(BIN)/provenance --db $(DEMO)/index.db add samples/big-buck-bunny.mp4 \
	  samples/tears-of-steel.mp4 samples/basketball.mp4 samples/his-girl-friday.mp4
	@echo; echo "== check a repost (trimmed, downscaled, recoloured copy of big-buck-bunny.mp4)"
	$(BIN)/provenance --db $(DEMO)/index.db check samples/repost-big-buck-bunny.mp4
	@echo; echo "== check footage that was never indexed"
	$(BIN)/provenance --db $(DEMO)/index.db check samples/unrelated.mp4
	$(BIN)/provenance --db $(DEMO)/index.db check samples/repost-big-buck-bunny.mp4 \
	  --format json --output $(DEMO)/report.json
	@echo; echo "JSON report written to $(DEMO)/report.json"

test: install
	$(BIN)/python -m pytest -q

bench-hash: install
	$(BIN)/python bench/hash_compare.py

# The anchors (vPDQ, pHash at 1 fps) stay out of the product's install.
# vpdq compiles against FFmpeg's libraries.
bench-deps: install
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! pkg-config --exists libavcodec 2>/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ cmake pkg-config \
	    libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
	    libavfilter-dev libavdevice-dev >/dev/null; \
	fi
	$(BIN)/pip install -q -r bench/requirements.txt

# BENCH_ARGS=--quick for the few-minute subset.
bench-accuracy: bench-deps
	$(BIN)/python bench/accuracy.py $(BENCH_ARGS)

# Whether keypoints would find the crops and stickers PDQ misses (reads the variants
# bench-accuracy made).
bench-local-features: install
	$(BIN)/python bench/local_features.py

# Ingest against vPDQ (bench/ingest.py), then check at 1 M, 3 M and 10 M indexed
# frames (bench/scale.py; builds its synthetic indexes once, ~2 GB, outside the repo).
bench-speed: bench-deps
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/scale.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
