"""Training loops, one module per stage (movseg train <stage>), and what they share."""

# stage -> module exposing CONFIG (a dataclass) and train(config, command)
STAGES = {
    "flow": "movseg_ros.training.flow",
    "motion": "movseg_ros.training.motion",
    "appearance": "movseg_ros.training.appearance",
    "joint": "movseg_ros.training.joint",
    "stemseg": "movseg_ros.training.stemseg",
    "saliency": "movseg_ros.training.saliency",
    "refine": "movseg_ros.training.refine",
    "mpnet": "movseg_ros.training.mpnet",
    "visual_memory": "movseg_ros.training.visual_memory",
}
