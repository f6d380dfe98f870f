"""The S³ backend: Mistral-7B + LoRA (peft) + ImageBind encoders + a projector to 4 LLM input vectors per
image or audio clip. Heavy imports (torch, transformers, imagebind) happen inside the submodules only."""
