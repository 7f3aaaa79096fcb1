"""The retraining pipeline's components: validate, train-baseline, finetune, evaluate, register."""
