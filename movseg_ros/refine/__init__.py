"""A learned refinement on top of the geometric pipeline's evidence (issue 13's item 4): a small network
trained on DAVIS-2016 train turns the hand-made maps (motion evidence, carried probability, colour and
saliency fusion) and the frame into the object probability."""
