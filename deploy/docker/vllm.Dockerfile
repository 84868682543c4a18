# The strong model's server: upstream vLLM's OpenAI-compatible image with LoRA enabled and
# runtime adapter loading switched on, so strong workers can publish finetuned versions
# (`POST /v1/load_lora_adapter`) without a restart. Mount the base model at /models/strong and
# the shared artifacts volume at /artifacts (the adapter paths the workers publish live there).
#
#   docker build -f deploy/docker/vllm.Dockerfile -t debate-w2s-vllm deploy/docker
FROM vllm/vllm-openai:v0.8.5

ENV VLLM_ALLOW_RUNTIME_LORA_UPDATING=True
EXPOSE 8000
ENTRYPOINT ["python3", "-m", "vllm.entrypoints.openai.api_server"]
CMD ["--model", "/models/strong", "--served-model-name", "strong", "--host", "0.0.0.0", "--port", "8000", \
     "--enable-lora", "--max-lora-rank", "16", "--max-loras", "4"]
