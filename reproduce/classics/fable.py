"""The fable's words, and what a story or the article's walk over the fable does with them: plain functions on
lists of words, no model (aesop.py and aesop_context.py train and generate with them; doc_tables reads the
forks column they write to metrics.csv with `fork_series`).

A fork is a context the text continues in more than one way: in "Belling the Cat", "the cat ." goes on with
"some" (word 26) and with "by" (word 130), "up and said" with "he" and with "that".
"""
import re


def read_words(text):
    """The article's `read_data`: every line stripped and split on whitespace, the lines' words in order."""
    return [word for line in text.splitlines() for word in line.strip().split()]


def window_offsets(n_words, n_input, rng):
    """The article's walk over the text: the window's first word, iteration after iteration.

    It starts at a random offset in [0, n_input + 1] and moves on by n_input + 1 words (one pass reads
    every 4th window); past the end it restarts at a random offset in [0, n_input + 1]. So the fable's
    two windows "the cat ." (offsets 22 and 126, both 2 mod 4) are read in the same passes, equally
    often, and always "the cat . -> some" first and "the cat . -> by" 26 iterations later.
    """
    offset = rng.randint(0, n_input + 1)
    while True:
        if offset > n_words - (n_input + 1):                      # past the end: a random restart in [0, 4]
            offset = rng.randint(0, n_input + 1)
        yield offset
        offset += n_input + 1


def followers(words, n):
    """Every n-word context of the text -> the (index, word) of each word that follows it, in text order."""
    table = {}
    for i in range(len(words) - n):
        table.setdefault(tuple(words[i:i + n]), []).append((i + n, words[i + n]))
    return table


def text_forks(words, n):
    """The text's forks for n-word contexts: [(context, [(index, word), ...])], in text order."""
    return [(context, ways) for context, ways in followers(words, n).items() if len({w for _, w in ways}) > 1]


def follows_text(words, prime, predicted):
    """How many predicted words follow their n preceding words (the prime's, then predicted ones) as they
    do somewhere in the text. A model that memorised the text scores all of them, whichever of the
    text's continuations it took where a context recurs."""
    n, table, story = len(prime), followers(words, len(prime)), list(prime) + list(predicted)
    return sum(story[i] in {word for _, word in table.get(tuple(story[i - n:i]), [])}
               for i in range(n, len(story)))


def forks(words, prime, predicted):
    """The steps of the story whose context the text continues in more than one way: a list of
    (index into predicted, context, [(index in the text, word), ...])."""
    n, table, story = len(prime), followers(words, len(prime)), list(prime) + list(predicted)
    found = []
    for i in range(n, len(story)):
        context = tuple(story[i - n:i])
        if len({word for _, word in table.get(context, [])}) > 1:
            found.append((i - n, context, table[context]))
    return found


def text_after(words, prime):
    """The text's words after the first occurrence of `prime` (None: the prime is not in the text)."""
    n = len(prime)
    for i in range(len(words) - n + 1):
        if words[i:i + n] == prime:
            return words[i + n:]
    return None


def words_as_in_text(words, prime, predicted):
    """How many predicted words equal the text's words after the first occurrence of `prime` (None: absent)."""
    after = text_after(words, prime)
    return None if after is None else sum(a == b for a, b in zip(predicted, after))


def first_departure(words, prime, predicted):
    """Where the story first differs from the text after `prime`: {"word": its number (1 = the first predicted),
    "story": the story's word, "text": the text's}; None when it never does or the prime is not in the text."""
    after = text_after(words, prime)
    for i, (said, written) in enumerate(zip(predicted, after or [])):
        if said != written:
            return {"word": i + 1, "story": said, "text": written}
    return None


def story_measures(words, prime, predicted, probabilities=None, dictionary=None):
    """How a story from `prime` matches the text `words` (JSON values): the words as in the text and where it
    first leaves it, the words that follow their context as somewhere in the text, and at each fork it met the
    text's continuations, the model's probability of each (given `probabilities`, one vector per predicted
    word, and the `dictionary` word -> id) and the word it took."""
    measures = {"prime": " ".join(prime), "story": list(predicted),
                "words_as_in_text": words_as_in_text(words, prime, predicted),
                "first_departure": first_departure(words, prime, predicted),
                "follow_their_context": follows_text(words, prime, predicted) if words else None,
                "context_words": len(prime), "forks": []}
    for step, context, ways in forks(words, prime, predicted) if words else []:
        fork = {"word": step + 1, "context": " ".join(context),
                "text": [{"word": word, "at": index + 1} for index, word in ways], "took": predicted[step]}
        if probabilities is not None and dictionary is not None:
            fork["model"] = {word: float(probabilities[step][dictionary[word]])
                             for word in dict.fromkeys(word for _, word in ways)}
        measures["forks"].append(fork)
    return measures


def walk_reads(words, n_input, offsets, iterations, display):
    """What the walk `offsets` (a window start per iteration, window_offsets) read of the text's forks in
    `iterations`: {context: {"iterations_before_the_end": {word: how many iterations before the last one the
    window followed by `word` was last read (0: in the last)}, "read_last": [the word whose window was read
    the more recently, at each progress line (every `display` iterations; None before either)]}}."""
    windows = {index - n_input: (" ".join(context), word)
               for context, ways in text_forks(words, n_input) for index, word in ways}
    last_read = {context: {} for context, _ in windows.values()}
    read_last = {context: [] for context in last_read}
    for iteration, offset in zip(range(iterations), offsets):
        if offset in windows:
            context, word = windows[offset]
            last_read[context][word] = iteration
        if (iteration + 1) % display == 0:
            for context, read in last_read.items():
                read_last[context].append(max(read, key=read.get) if read else None)
    return {context: {"iterations_before_the_end": {word: iterations - 1 - i for word, i in read.items()},
                      "read_last": read_last[context]}
            for context, read in last_read.items()}


def fork_series(forks):
    """The `forks` column of metrics.csv parsed: [(label, probability)], e.g. ("the cat . -> some", 0.579) or,
    for aesop-context, ("the cat . -> some (word 26)", 1.0)."""
    series = []
    for part in filter(None, forks.split("; ")):
        context, ways = part.split(" -> ", 1)
        for word, p, where in re.findall(r"(\S+) ([01]\.\d+)( \(word \d+\))?", ways):
            series.append((f"{context} -> {word}{where}", float(p)))
    return series
