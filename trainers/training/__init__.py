"""The shared training core: one classifier, one input encoding, one loop, for weak and strong trainers.

model = load_classifier(base_dir, head="lm", lora=LoraSettings())
result = train_classifier(model, inputs, targets, TrainConfig(epochs=2), checkpoint_dir=ckpt)
probs = predict_proba(model, test_inputs, max_length=512)
model.save(out_dir)           # a PEFT adapter vLLM can load, for LoRA + lm head
"""

from trainers.hyperparameters import LoraSettings, TrainConfig
from trainers.training.checkpoint import CheckpointMismatch
from trainers.training.classifier import (
    Classifier,
    load_classifier,
    load_saved_classifier,
    resolve_device,
    weight_dtype,
)
from trainers.training.distributed import Ranks, current_ranks, init_distributed
from trainers.training.inputs import ClassifierInput, InputTooLong, TrimStats, encode_inputs
from trainers.training.loop import StepInfo, TrainingStopped, TrainResult, train_classifier
from trainers.training.predict import held_out_evaluator, predict_proba

__all__ = [
    "CheckpointMismatch",
    "Classifier",
    "ClassifierInput",
    "InputTooLong",
    "LoraSettings",
    "Ranks",
    "StepInfo",
    "TrainConfig",
    "TrainResult",
    "TrainingStopped",
    "TrimStats",
    "current_ranks",
    "encode_inputs",
    "held_out_evaluator",
    "init_distributed",
    "load_classifier",
    "load_saved_classifier",
    "predict_proba",
    "resolve_device",
    "train_classifier",
    "weight_dtype",
]
