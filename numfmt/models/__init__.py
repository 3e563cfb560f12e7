"""Where models come from and where quantized ones go: sources and sinks.

Sources: a MODEL argument resolved (``sources.resolve``: a Hugging Face folder, a Llama
``.gguf`` file, an installed name) and loaded (``loading.load_model``); a safetensors
checkpoint read a tensor at a time (``checkpoint``); a GGUF file decoded (``gguf_read``).
Sinks: numfmt's own one-file safetensors layout (``saving``: written from a model in memory
or tensor by tensor, read back by ``load_quantized``), and GGUF (``gguf_write``). Every file
goes through one atomic writer (``numfmt._files``) and every safetensors file through one
reader (``numfmt._safetensors``). Everything here needs torch; import the modules you use.
"""
