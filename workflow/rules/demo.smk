# The demo's local models: a chain of tiny Llama-architecture causal LMs and a tiny reward
# model, random weights, with a tokenizer trained on generated text plus the demo data.
# No network.


rule build_demo_models:
    input:
        DEMO_TEXTS,
    output:
        expand("results/demo/models/{name}/config.json", name=DEMO_MODELS),
    log:
        "results/logs/build_demo_models.log",
    conda:
        "../../envs/inference.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/build_demo_models.py"
