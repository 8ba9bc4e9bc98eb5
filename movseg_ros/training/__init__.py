"""Training loops, one module per stage (movseg train <stage>), and what they share."""

STAGES = {"flow": "movseg_ros.training.flow"}  # stage -> module exposing CONFIG (a dataclass) and train(config, ...)
