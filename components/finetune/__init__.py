"""finetune: fine-tune any AutoModelForSequenceClassification checkpoint (FP16 on CUDA, fp32 on CPU)."""
