"""Agreement and majority against values computed by hand from textbook examples."""

import pytest

from clinic_ai.labelling.agreement import category_counts, cohen_kappa, fleiss_kappa, majority, project_kappa


def test_cohens_kappa_matches_the_textbook_example():
    # Wikipedia, "Cohen's kappa", worked example: 50 proposals, A and B both yes 20, A yes B no 5,
    # A no B yes 10, both no 15. p_o = 35/50 = 0.7; p_e = 0.5·0.6 + 0.5·0.4 = 0.5; kappa = 0.2/0.5 = 0.4.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohens_kappa_of_perfect_agreement_is_one_and_of_chance_level_is_zero():
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == pytest.approx(1.0)
    # p_o = 0.5, p_e = 0.5·0.5 + 0.5·0.5 = 0.5
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == pytest.approx(0.0)


def test_cohens_kappa_is_undefined_when_both_readers_only_ever_used_one_class():
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert cohen_kappa([], []) is None


# Fleiss (1971) as reproduced in Wikipedia, "Fleiss' kappa": 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_matches_the_textbook_example():
    # By hand: p_j = (0.143, 0.200, 0.279, 0.150, 0.229), P_e = Σ p_j² = 0.2128;
    # P_i = (1.000, 0.253, 0.308, 0.440, 0.330, 0.462, 0.242, 0.176, 0.286, 0.286), mean 0.3780;
    # kappa = (0.3780 - 0.2128) / (1 - 0.2128) = 0.2099.
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_of_three_readers_by_hand():
    # 4 images, 3 readers. Counts (a, b): (3,0) (0,3) (2,1) (1,2).
    # P_i = 1, 1, 1/3, 1/3 -> mean 2/3; p_a = p_b = 0.5 -> P_e = 0.5; kappa = (2/3 - 1/2) / (1/2) = 1/3.
    ratings = [["a", "a", "a"], ["b", "b", "b"], ["a", "a", "b"], ["b", "a", "b"]]
    table, categories = category_counts(ratings)
    assert categories == ["a", "b"]
    assert table.tolist() == [[3, 0], [0, 3], [2, 1], [1, 2]]
    assert fleiss_kappa(table) == pytest.approx(1 / 3)
    assert project_kappa(ratings) == ("Fleiss' kappa", pytest.approx(1 / 3))


def test_project_kappa_picks_cohens_for_two_readers():
    ratings = [["yes", "yes"]] * 20 + [["yes", "no"]] * 5 + [["no", "yes"]] * 10 + [["no", "no"]] * 15
    assert project_kappa(ratings) == ("Cohen's kappa", pytest.approx(0.4))


def test_fleiss_kappa_refuses_subjects_with_different_numbers_of_readers():
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 2]])


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        (["a"], "a"),
        (["a", "a"], "a"),
        (["a", "b"], None),  # two readers who disagree: no majority
        (["a", "a", "b"], "a"),
        (["a", "b", "c"], None),
        (["a", "a", "b", "b"], None),  # a tie is not a majority
        (["a", "a", "a", "b"], "a"),
        ([], None),
    ],
)
def test_majority_needs_more_than_half_of_the_readers(ratings, expected):
    assert majority(ratings) == expected
