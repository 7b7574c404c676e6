"""Study ``echo`` (write-up 003): can an LSTM remember a sequence's first symbol until its last step?

Two sequences share their middle (3,0,1,2,3 and 4,0,1,2,4): after a 2 comes a 3 in one and a 4 in
the other, so only a model that remembers how its sequence began can predict every step. A stateful
LSTM is trained the write-up's way (batch 1, state reset after each sequence) from every seed, next
to a memoryless control: the same network without state, which sees one symbol at a time and so can
do no better than the cap computed from the pairs themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline import errors, io, progress
from pipeline.artifacts import paths
from pipeline.params import ConfigError
from pipeline.seeds import repeat_seeds
from pipeline.studies import common

MODELS = {"lstm": True, "control": False}  # name -> stateful; the control differs in nothing else


def check(section: DictConfig) -> list[list[int]]:
    """Validate the echo config; return its sequences."""
    common.positive_ints(section, ("repeats", "symbols", "units", "epochs"), "echo")
    sequences = [list(s) for s in section.sequences]
    if not sequences or len({len(s) for s in sequences}) != 1 or len(sequences[0]) < 2:
        raise ConfigError("echo.sequences must hold sequences of one common length, at least two symbols each.")
    if any(not 0 <= v < section.symbols for s in sequences for v in s):
        raise ConfigError(f"echo.sequences may only use symbols 0..{section.symbols - 1}; raise echo.symbols.")
    return sequences


# --- data and the memoryless cap: pure functions ----------------------------------------------------


def pairs(sequence: Sequence[int], symbols: int) -> tuple[np.ndarray, np.ndarray]:
    """One-hot (input, next symbol) pairs: x (n-1, 1, symbols), one step per row; y (n-1, symbols)."""
    onehot = np.eye(symbols, dtype=np.float32)[np.asarray(sequence)]
    return onehot[:-1, None, :], onehot[1:]


def successors(sequences: Sequence[Sequence[int]]) -> dict[int, Counter]:
    """For every symbol, how often each symbol follows it across all sequences."""
    out: dict[int, Counter] = {}
    for s in sequences:
        for a, b in pairwise(s):
            out.setdefault(a, Counter())[b] += 1
    return out


def memoryless_cap(sequences: Sequence[Sequence[int]]) -> float:
    """The best accuracy any function of the current symbol alone can reach on every (input, next) pair.

    Such a function gives each input one answer, so per input it is right at most as often as that
    input's most common successor occurs.
    """
    total = sum(len(s) - 1 for s in sequences)
    return sum(max(c.values()) for c in successors(sequences).values()) / total


def conflicting(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """Per sequence and step, whether that step's input is followed by different symbols somewhere."""
    after = successors(sequences)
    return np.array([[len(after[a]) > 1 for a in s[:-1]] for s in sequences])


def encode(predictions: np.ndarray) -> str:
    """Predicted symbols as text, one space-separated group per sequence (e.g. ``0123 0124``)."""
    return " ".join("".join(str(int(v)) for v in row) for row in predictions)


# --- models ------------------------------------------------------------------------------------------


def build(units: int, symbols: int, stateful: bool) -> Any:
    """LSTM(units, tanh) -> Dense(symbols, sigmoid), binary cross-entropy, Adam: the write-up's network."""
    import keras

    inputs = keras.Input(batch_shape=(1, 1, symbols))
    hidden = keras.layers.LSTM(units, stateful=stateful)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(symbols, activation="sigmoid")(hidden))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def train(model: Any, data: list[tuple[np.ndarray, np.ndarray]], epochs: int) -> np.ndarray:
    """Each epoch, every sequence in order, one update per step (batch 1), state reset after each sequence.

    One ``train_on_batch`` per step makes the same updates in the same order as the write-up's
    one-epoch ``fit`` per sequence, bit for bit (a test holds them equal), without ``fit``'s per-call
    overhead, which would dominate the run. Returns each epoch's mean loss over every step.
    """
    losses = np.empty(epochs)
    for e in range(epochs):
        step_losses = []
        for x, y in data:
            common.check_batch(model, len(x), 1)
            step_losses += [float(model.train_on_batch(x[i : i + 1], y[i : i + 1])) for i in range(len(x))]
            common.reset_states(model)
        losses[e] = np.mean(step_losses)
    return losses


def predict_steps(model: Any, data: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The predicted symbol at every step of every sequence, each sequence from a reset state."""
    out = []
    for x, _ in data:
        out.append(np.argmax(model.predict(x, batch_size=1, verbose=0), axis=-1))
        common.reset_states(model)
    return np.stack(out)


def fit_one(seed: int, section: DictConfig, stateful: bool) -> tuple[np.ndarray, np.ndarray]:
    """(predicted symbols per sequence and step, per-epoch losses) of one model from one seed."""
    data = [pairs(s, section.symbols) for s in section.sequences]
    common.seed_keras(seed)
    model = build(section.units, section.symbols, stateful)
    losses = train(model, data, section.epochs)
    return predict_steps(model, data), losses


# --- summaries, tables, plot, report -------------------------------------------------------------------


def targets(sequences: Sequence[Sequence[int]]) -> np.ndarray:
    return np.array([s[1:] for s in sequences])


def correct_from_results(results: pd.DataFrame, sequences: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """Per model, (seeds, sequences, steps) booleans read back from the results table's predictions column."""
    expected = targets(sequences)
    return {
        name: np.stack([np.array([[int(c) for c in group] for group in text.split(" ")]) == expected
                        for text in results[f"{name}_predictions"]])
        for name in MODELS
    }


def mcnemar_exact(first: np.ndarray, second: np.ndarray) -> dict[str, Any]:
    """Exact McNemar test on paired successes (same seeds): only seeds where the two models differ count."""
    from statsmodels.stats.contingency_tables import mcnemar

    first, second = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    table = [[int(np.sum(first & second)), int(np.sum(first & ~second))],
             [int(np.sum(~first & second)), int(np.sum(~first & ~second))]]
    result = mcnemar(table, exact=True)
    return {"both": table[0][0], "first_only": table[0][1], "second_only": table[1][0], "neither": table[1][1],
            "pvalue": float(result.pvalue)}


def summarise(correct: dict[str, np.ndarray], final_loss: dict[str, np.ndarray], sequences) -> dict[str, Any]:
    """``correct[name]``: (seeds, sequences, steps) booleans; ``final_loss[name]``: (seeds,). Rates over seeds,
    and the LSTM against the control seed by seed (exact McNemar on solving both sequences)."""
    cap = memoryless_cap(sequences)
    conflict = conflicting(sequences)
    out: dict[str, Any] = {"memoryless_cap": cap}
    for name, c in correct.items():
        acc = c.reshape(len(c), -1).mean(axis=1)
        out[name] = {
            "accuracy": common.describe(acc),
            "solved": common.rate(c.reshape(len(c), -1).all(axis=1)),
            "conflicting_steps_right": common.rate(c[:, conflict].all(axis=1)),
            "at_cap": common.rate(np.isclose(acc, cap)),
            "above_cap": common.rate(acc > cap + 1e-9),
            "final_loss": common.describe(final_loss[name]),
        }
    solved = {name: c.reshape(len(c), -1).all(axis=1) for name, c in correct.items()}
    out["lstm_vs_control"] = mcnemar_exact(solved["lstm"], solved["control"])
    return out


def claims(summary: dict[str, Any], alpha: float = 0.05) -> pd.DataFrame:
    """A verdict on each claim of the write-up, from the rates over seeds (``common.rate_verdict``)."""
    lstm, control, test = summary["lstm"], summary["control"], summary["lstm_vs_control"]
    better = test["first_only"] > test["second_only"] and test["pvalue"] < alpha
    worse = test["first_only"] < test["second_only"] and test["pvalue"] < alpha
    return common.claims_table([
        {"claim (write-up)": "The stateful LSTM learns both sequences, predicting every step",
         "measured over seeds": f"solves both: {common.rate_text(lstm['solved'])}",
         "verdict": common.rate_verdict(lstm["solved"])},
        {"claim (write-up)": "It uses the sequence's first symbol to resolve the conflicting step",
         "measured over seeds": f"conflicting steps right: {common.rate_text(lstm['conflicting_steps_right'])}",
         "verdict": common.rate_verdict(lstm["conflicting_steps_right"])},
        {"claim (write-up)": "Memory is what solves it: the stateful LSTM beats the same network without state",
         "measured over seeds": (f"seeds solved by the LSTM alone {test['first_only']}, by the control alone "
                                 f"{test['second_only']}; exact McNemar p = {test['pvalue']:.2g}"),
         "verdict": "supported" if better else "contradicted" if worse else "inconclusive"},
        {"claim (write-up)": "A network without memory cannot learn the problem",
         "measured over seeds": (f"control above the {summary['memoryless_cap']:.1%} cap: "
                                 f"{common.rate_text(control['above_cap'])}"),
         "verdict": common.rate_verdict(control["above_cap"], claimed=False)},
    ])


def step_table(correct: dict[str, np.ndarray], predicted: dict[str, np.ndarray], sequences) -> pd.DataFrame:
    conflict = conflicting(sequences)
    rows = []
    for i, s in enumerate(sequences):
        for t in range(len(s) - 1):
            row = {"sequence": ",".join(map(str, s)), "step": f"{s[t]} -> {s[t + 1]}",
                   "conflicting": "yes" if conflict[i, t] else ""}
            for name in correct:
                row[f"{name}: seeds right"] = common.pct(correct[name][:, i, t].mean())
                symbols, counts = np.unique(predicted[name][:, i, t], return_counts=True)
                row[f"{name}: most predicted"] = int(symbols[np.argmax(counts)])
            rows.append(row)
    return pd.DataFrame(rows)


def plot(correct: dict[str, np.ndarray], losses: dict[str, np.ndarray], sequences, cap: float, path: Path) -> None:
    """(a) share of seeds right at each step, per model; (b) training loss over epochs, median and IQR."""
    plt = common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    labels = [f"{s[t]}->{s[t + 1]}\n(seq {i + 1})" for i, s in enumerate(sequences) for t in range(len(s) - 1)]
    width = 0.8 / len(correct)
    for k, (name, c) in enumerate(correct.items()):
        x = np.arange(len(labels)) + (k - (len(correct) - 1) / 2) * width
        ax1.bar(x, 100 * c.reshape(len(c), -1).mean(axis=0), width, label=name)
    ax1.set_xticks(np.arange(len(labels)), labels, fontsize=8)
    ax1.set_ylabel("seeds predicting the step right (%)")
    ax1.set_title(f"Per-step predictions; memoryless cap on accuracy {cap:.1%}")
    ax1.legend(loc="lower left")
    for name, curve in losses.items():
        q25, med, q75 = np.quantile(curve, [0.25, 0.5, 0.75], axis=0)
        epochs = np.arange(1, curve.shape[1] + 1)
        ax2.plot(epochs, med, label=f"{name} (median)")
        ax2.fill_between(epochs, q25, q75, alpha=0.25)
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("binary cross-entropy")
    ax2.set_title(f"Training loss over {len(next(iter(losses.values())))} seeds (IQR shaded)")
    ax2.legend()
    fig.tight_layout()
    common.save_figure(fig, path)


def report(summary: dict[str, Any], steps: pd.DataFrame, section: DictConfig, md: Path, png: Path) -> str:
    cap, lstm, control = summary["memoryless_cap"], summary["lstm"], summary["control"]
    seqs = " and ".join(",".join(map(str, s)) for s in section.sequences)
    headline = pd.DataFrame([
        {"model": name, "mean accuracy": common.pct(s["accuracy"]["mean"]),
         "median": common.pct(s["accuracy"]["median"]),
         "min-max": f"{common.pct(s['accuracy']['min'])}-{common.pct(s['accuracy']['max'])}",
         "final loss (median)": f"{s['final_loss']['median']:.4f}",
         "solve both sequences (95% CI)": common.rate_text(s["solved"]),
         "conflicting steps right": common.rate_text(s["conflicting_steps_right"])}
        for name, s in (("lstm", lstm), ("control", control))
    ])
    return "\n".join([
        "## Echo: remembering a sequence's first symbol (write-up 003)",
        "",
        f"Sequences {seqs}, one-hot over {section.symbols} symbols, one step per sample. `lstm`: the write-up's "
        f"stateful LSTM ({section.units} units, sigmoid output, binary cross-entropy, Adam, batch 1, state reset "
        f"after each sequence, {section.epochs} epochs). `control`: the same network and training without state, "
        f"so each prediction depends on the current symbol alone. Both trained from the same {lstm['solved']['n']} "
        "seeds; a model solves the problem when it predicts every step of both sequences.",
        "",
        common.markdown_table(headline),
        "",
        f"**Memoryless cap.** A model that sees only the current symbol must give one answer per input, so on "
        f"the {int(steps.shape[0])} (input, next) pairs it can be right at most {cap:.1%} of the time: the "
        f"conflicting input has two different successors and at least one of them is always wrong. The control "
        f"reached the cap in {common.rate_text(control['at_cap'])} seeds and exceeded it in "
        f"{control['above_cap']['count']}; the stateful LSTM exceeded it in "
        f"{common.rate_text(lstm['above_cap'])}.",
        "",
        "**Why seeds differ.** Each sample is one time step and each batch one sample, so backpropagation stops "
        "at the batch: no gradient links a sequence's last prediction to its first symbol three steps earlier. "
        "The state carries that symbol forward only if the dynamics the LSTM develops for the other steps happen "
        "to keep it; training cannot aim for it. Hence a rate over seeds rather than a yes or no, and no promise "
        "that more epochs raise it (try `echo.epochs`).",
        "",
        "**LSTM against the control, seed by seed.** Both models train from the same seeds, so solving is a paired "
        f"outcome: in {summary['lstm_vs_control']['both']} seeds both solve, in "
        f"{summary['lstm_vs_control']['first_only']} only the LSTM, in {summary['lstm_vs_control']['second_only']} "
        f"only the control, in {summary['lstm_vs_control']['neither']} neither. The exact McNemar test, which counts "
        f"only the seeds where they differ, gives p = {summary['lstm_vs_control']['pvalue']:.2g}.",
        "",
        "**The write-up's claims.** A claim shown by one run is read as \"most seeds do this\": supported when the "
        "95% interval of the rate lies wholly above one half, contradicted when wholly below, inconclusive when the "
        "seeds split too evenly to tell.",
        "",
        common.markdown_table(claims(summary)),
        "",
        "Per-step predictions (share of seeds right, and the symbol most seeds predict):",
        "",
        common.markdown_table(steps),
        "",
        common.image(md, png, "Per-step accuracy of the stateful LSTM and the memoryless control; training loss"),
        "",
    ])


def run(cfg: DictConfig, root: Path) -> pd.DataFrame:
    section = cfg.echo
    common.quiet_tensorflow()
    sequences = check(section)
    p = paths(cfg, root)
    seeds = repeat_seeds(cfg.base_seed, section.repeats)
    expected = targets(sequences)
    predicted: dict[str, list] = {name: [] for name in MODELS}
    losses: dict[str, list] = {name: [] for name in MODELS}
    with progress.bar(len(seeds) * len(MODELS), "echo") as bar:
        for seed in seeds:
            for name, stateful in MODELS.items():
                pred, loss = fit_one(int(seed), section, stateful)
                predicted[name].append(pred)
                losses[name].append(loss)
                bar.update(1)
    predicted_arr = {name: np.stack(v) for name, v in predicted.items()}
    correct = {name: v == expected for name, v in predicted_arr.items()}
    results = pd.DataFrame({"repeat": np.arange(len(seeds)), "seed": seeds.astype(np.int64)})
    for name in MODELS:
        results[f"{name}_accuracy"] = correct[name].reshape(len(seeds), -1).mean(axis=1)
        results[f"{name}_solved"] = correct[name].reshape(len(seeds), -1).all(axis=1)
        results[f"{name}_predictions"] = [encode(v) for v in predicted_arr[name]]
        results[f"{name}_final_loss"] = [float(v[-1]) for v in losses[name]]
    summary = summarise(correct, {name: results[f"{name}_final_loss"].to_numpy() for name in MODELS}, sequences)
    steps = step_table(correct, predicted_arr, sequences)
    io.write_csv(p.echo_results, results)
    io.write_json(p.echo_metrics, {"base_seed": int(cfg.base_seed), **summary})
    plot(correct, {name: np.stack(v) for name, v in losses.items()}, sequences, summary["memoryless_cap"],
         p.echo_plot)
    io.write_text(p.echo_report, report(summary, steps, section, p.echo_report, p.echo_plot) + "\n")
    print(steps.to_string(index=False))
    return results


def main() -> None:
    common.stage_main("echo", run)


if __name__ == "__main__":
    errors.cli(main)
