"""The weak model's side of debate-augmented W2S: what a weak model reads for one example.

A weak model sees the formatted example followed by the debate transcript, one rendered
speech per context part (`debate.transcript.render_turn`), so the training core can trim
every speech by the same rule when the whole does not fit.
"""

from trainers.weak.inputs import transcript_context, weak_input

__all__ = ["transcript_context", "weak_input"]
