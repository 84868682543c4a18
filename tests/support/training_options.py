"""A value other than the default for every training option (`trainers.hyperparameters`).

tests/trainers/test_hyperparameters.py fails when an option is missing here, and then checks each
reaches the training core from a run config and from the fine-tuning API.
"""

TRAIN = {
    "epochs": 3.0,
    "lr": 2e-4,
    "batch_size": 8,
    "micro_batch_size": 4,
    "weight_decay": 0.01,
    "warmup_ratio": 0.1,
    "max_length": 256,
    "group_by_length": False,
    "gradient_checkpointing": True,
    "compile": True,
    "checkpoint_every": 7,
    "eval_batch_size": 5,
    "eval_every": 3,
}
LORA = {"r": 4, "alpha": 8.0, "dropout": 0.1, "target_modules": ("q_proj", "v_proj")}
LOGCONF = {"alpha_max": 0.75, "warmup_frac": 0.1}
PRODUCT = {"alpha": 2.0, "beta": 0.5}
