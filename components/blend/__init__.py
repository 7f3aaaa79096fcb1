"""Blend: the fine-tuned model averaged with the baseline, the weight chosen on the validation split."""
