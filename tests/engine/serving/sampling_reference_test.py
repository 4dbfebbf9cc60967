"""The engine's logit processing and sampling distribution against numpy.

The reference below is written from the definitions (Hugging Face's / vLLM's repetition
penalty, OpenAI's presence and frequency penalties, vLLM's order: logit_bias, penalties,
temperature, top-k, top-p, min-p), not from the engine's code. Usage: test.py TOOL
"""
import json
import subprocess
import sys

import numpy as np


def reference(case):
    p = case["params"]
    x = np.array(case["logits"], dtype=np.float64)
    vocab = x.size
    prompt, output = np.array(case["prompt"], dtype=int), np.array(case["output"], dtype=int)
    for token, bias in p.get("logit_bias", []):
        x[token] += bias
    penalty = p.get("repetition_penalty", 1.0)
    seen = np.zeros(vocab, dtype=bool)
    seen[prompt] = True
    seen[output] = True
    x = np.where(seen & (x > 0), x / penalty, np.where(seen, x * penalty, x))
    counts = np.bincount(output, minlength=vocab)
    x = x - p.get("frequency_penalty", 0.0) * counts - p.get("presence_penalty", 0.0) * (counts > 0)
    processed = x.copy()

    log_probs = x - x.max() - np.log(np.exp(x - x.max()).sum())
    order = sorted(range(vocab), key=lambda i: (-x[i], i))  # most likely first, ties by id
    temperature = p.get("temperature", 0.0)
    if temperature == 0:
        return processed, {order[0]: 1.0}, log_probs, order
    probs = np.exp((x - x.max()) / temperature)
    probs /= probs.sum()
    keep = np.ones(vocab, dtype=bool)
    top_k = p.get("top_k", 0)
    if top_k > 0:
        keep[order[top_k:]] = False
    kept_sorted = [i for i in order if keep[i]]
    # top-p: a token stays if the kept tokens more likely than it hold less than top_p.
    mass_before = np.cumsum([0.0] + [probs[i] for i in kept_sorted])[:-1] / sum(probs[i] for i in kept_sorted)
    for i, before in zip(kept_sorted, mass_before):
        if before >= p.get("top_p", 1.0) and i != kept_sorted[0]:
            keep[i] = False
    min_p = p.get("min_p", 0.0)
    keep &= probs >= min_p * probs[keep].max()
    final = np.where(keep, probs, 0.0)
    final /= final.sum()
    return processed, {i: final[i] for i in range(vocab) if keep[i]}, log_probs, order


def make_cases(rng):
    cases = []
    settings = [
        {"repetition_penalty": 1.3},
        {"repetition_penalty": 0.7},
        {"presence_penalty": 0.8, "frequency_penalty": 0.5},
        {"presence_penalty": -1.5, "frequency_penalty": -0.25},
        {"logit_bias": [[3, 5.0], [7, -100.0], [0, 0.5]]},
        {"temperature": 0.7, "min_p": 0.1},
        {"temperature": 1.3, "min_p": 0.05, "top_k": 12},
        {"temperature": 1.0, "top_p": 0.8, "min_p": 0.02},
        {"temperature": 0.9, "repetition_penalty": 1.2, "presence_penalty": 0.5, "frequency_penalty": 0.3,
         "logit_bias": [[5, 2.0]], "top_k": 20, "top_p": 0.9, "min_p": 0.05},
    ]
    for params in settings:
        for _ in range(4):
            vocab = int(rng.integers(24, 64))
            cases.append({
                "logits": (rng.normal(size=vocab) * 3).astype(np.float32).tolist(),
                "prompt": rng.integers(0, vocab, size=6).tolist(),
                "output": rng.integers(0, vocab, size=int(rng.integers(0, 10))).tolist(),
                "params": params,
                "top_logprobs": int(rng.integers(0, 21)),
            })
    return cases


def main():
    cases = make_cases(np.random.default_rng(13))
    run = subprocess.run([sys.argv[1]], input=json.dumps(cases), capture_output=True, text=True, check=True)
    results = json.loads(run.stdout)
    for n, (case, got) in enumerate(zip(cases, results)):
        processed, distribution, log_probs, order = reference(case)
        where = f"case {n} {case['params']}"
        np.testing.assert_allclose(got["processed"], processed, rtol=1e-5, atol=1e-4, err_msg=where)
        got_distribution = {int(i): p for i, p in got["distribution"]}
        assert set(got_distribution) == set(distribution), f"{where}: kept {sorted(got_distribution)}, want {sorted(distribution)}"
        for i, p in distribution.items():
            assert abs(got_distribution[i] - p) < 1e-5, f"{where}: p[{i}] {got_distribution[i]} != {p}"
        lp = got["logprobs"]
        assert abs(lp["logprob"] - log_probs[lp["token"]]) < 1e-4, where
        want_top = order[:case["top_logprobs"]]
        assert [t for t, _ in lp["top"]] == want_top, f"{where}: top {lp['top']} != {want_top}"
        np.testing.assert_allclose([v for _, v in lp["top"]], log_probs[want_top], atol=1e-4, err_msg=where)
    print(f"{len(cases)} cases match the numpy reference")


if __name__ == "__main__":
    main()
