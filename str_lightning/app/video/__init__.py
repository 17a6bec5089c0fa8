"""From a user's video to the model: frames, boxes and SPIN crops, ResNet-50 features in clip
shards, and the demo overlay. Needs the optional extra ``.[video]`` (imageio with its ffmpeg binary)."""
