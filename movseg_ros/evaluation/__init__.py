"""Evaluation metrics: DAVIS J/F, FBMS (official and proposed), MOTS/HOTA through trackeval, detection mAP.

ROS-free; trackeval and pycocotools are imported inside the functions that need them.
"""
