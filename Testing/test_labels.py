"""The left-right class permutation, checked by name, by label and against the training generator's pairs."""

import numpy as np
import pytest

from medsegmamba.labels import ASEG, HIPPOCAMPAL_SUBFIELDS, Structure, left_right_swap


def _names(structures):
    return [s.name for s in structures]


@pytest.mark.parametrize("structures", [ASEG, HIPPOCAMPAL_SUBFIELDS])
def test_swap_is_an_involution(structures):
    swap = left_right_swap(structures)
    assert sorted(swap.tolist()) == list(range(len(structures)))  # a permutation
    np.testing.assert_array_equal(swap[swap], np.arange(len(structures)))


def test_aseg_swaps_homologues_and_keeps_the_midline():
    swap, names = left_right_swap(ASEG), _names(ASEG)
    assert names[swap[names.index("Left-Hippocampus")]] == "Right-Hippocampus"
    assert names[swap[names.index("Right-choroid-plexus")]] == "Left-choroid-plexus"
    kept = [names[i] for i in range(len(ASEG)) if swap[i] == i]
    assert kept == ["Unknown", "3rd-Ventricle", "4th-Ventricle", "Brain-Stem", "CSF", "WM-hypointensities"]


def test_aseg_swap_agrees_with_the_training_generators_pairs():
    """The generator flips label maps with its own label table: the two must pair the same labels."""
    from medsegmamba.train.labelmaps import LEFT_RIGHT

    pairs = {**LEFT_RIGHT, **{right: left for left, right in LEFT_RIGHT.items()}}
    labels = [s.label for s in ASEG]
    swapped = [labels[j] for j in left_right_swap(ASEG)]
    assert swapped == [pairs.get(label, label) for label in labels]


def test_subfields_swap_12xx_with_22xx():
    labels = [s.label for s in HIPPOCAMPAL_SUBFIELDS]
    swapped = [labels[j] for j in left_right_swap(HIPPOCAMPAL_SUBFIELDS)]
    assert swapped == [0] + [label + 1000 for label in labels[1:13]] + [label - 1000 for label in labels[13:]]


def test_a_structure_without_its_homologue_is_an_error():
    table = (Structure(0, "Unknown", (0, 0, 0)), Structure(17, "Left-Hippocampus", (0, 0, 0)))
    with pytest.raises(ValueError, match="'Left-Hippocampus' \\(label 17\\) has no 'Right-Hippocampus'"):
        left_right_swap(table)
