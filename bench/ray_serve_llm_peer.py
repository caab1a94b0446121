"""Ray Serve LLM's OpenAI app over vLLM, as a peer for ``aihub bench ray-llm`` (run as a module).

``python -m bench.ray_serve_llm_peer --model DIR --port N [--dtype bfloat16] [--enforce-eager]``: a local
Ray with 4 logical CPUs (with 2, Ray Serve LLM's OpenAiIngress is never scheduled on this machine), one
LLM replica on one CPU bundle, Serve's HTTP proxy on 127.0.0.1. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--kv-cache-gib", type=float, default=2.0)
    parser.add_argument("--enforce-eager", action="store_true")
    parser.add_argument("--stream-interval", type=int, default=1)
    args = parser.parse_args()

    import ray
    from ray import serve
    from ray.serve.llm import LLMConfig, build_openai_app

    engine_kwargs: dict[str, object] = {
        "dtype": args.dtype,
        "enforce_eager": args.enforce_eager,
        "kv_cache_memory_bytes": int(args.kv_cache_gib * 2**30),
        "stream_interval": args.stream_interval,
    }
    if args.max_model_len:
        engine_kwargs["max_model_len"] = args.max_model_len
    config = LLMConfig(
        model_loading_config={"model_id": "smollm2", "model_source": args.model},
        deployment_config={"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}},
        engine_kwargs=engine_kwargs,
        placement_group_config={"bundles": [{"CPU": 1}]},
        runtime_env={"env_vars": {"VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}},
    )
    ray.init(address="local", num_cpus=4, include_dashboard=False)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(build_openai_app({"llm_configs": [config]}), blocking=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
