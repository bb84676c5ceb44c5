"""The perplexity-per-step figure: a run's curves beside the book's printed ones (compare, the word recipes)."""
from reproduce.book_record import PRINTED_CONFIGS, PRINTED_RUNS
from reproduce.files import pyplot, save_figure


def printed_label(run):
    """A printed run's label in the figures: its name, and how the book trained it."""
    return f"{PRINTED_RUNS[run]} (printed; {PRINTED_CONFIGS[run]})"


BOOK_COLOURS = {printed_label("lstm"): "black", printed_label("gru"): "darkgrey"}


def plot_perplexity(path, series, title, with_train):
    """series: [(label, per-step rows)]; valid solid, train dashed; a triangle where the rate was halved.
    The book's curves are black (LSTM) and grey (GRU); runs take matplotlib's colours."""
    plt = pyplot()
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # loaded to draw only
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for label, rows in series:
        steps = [row["step"] for row in rows]
        line, = axes.plot(steps, [row["valid_perplexity"] for row in rows], marker=".", label=f"{label}: valid",
                          color=BOOK_COLOURS.get(label))
        if with_train:
            axes.plot(steps, [row["train_perplexity"] for row in rows], linestyle="--", color=line.get_color(),
                      label=f"{label}: train")
        reduced = [row for row in rows if row["learning_rate_reduced"]]
        axes.plot([row["step"] for row in reduced], [row["valid_perplexity"] for row in reduced], "v",
                  color=line.get_color(), markersize=9, linestyle="none")
    axes.plot([], [], "v", color="grey", linestyle="none", label="learning rate halved after this step")
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("step (10 documents x 100 iterations in the book)")
    axes.set_ylabel("perplexity")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)
