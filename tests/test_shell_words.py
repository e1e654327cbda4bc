"""The shell scanner that decides whether a template value lands in a plain word."""

from __future__ import annotations

import pytest

from lockgate.shell_words import WORD, contexts


@pytest.mark.parametrize(
    ("command", "where"),
    [
        ("echo V", WORD),
        ("echo aVb", WORD),
        ("echo a#V", WORD),
        ("(echo V)", WORD),
        ("f() { echo V; }", WORD),
        ("cat <<< V", WORD),
        ("echo \"a\" V 'b'", WORD),
        ('echo "$(echo V)"', WORD),
        ("echo $(( (1) )) V", WORD),
        ('echo x # "\nV', WORD),
        ('echo "V"', '"..." quotes'),
        ("echo 'V'", "'...' quotes"),
        ('echo $"V"', '"..." quotes'),
        ("echo $'\\' V'", "$'...' quotes"),
        ('echo "$(echo "V")"', '"..." quotes'),
        ('echo "$(echo (x)) V"', '"..." quotes'),
        ("echo `echo V`", "`...` backticks"),
        ('echo "`echo V`"', "`...` backticks"),
        ('echo "${X:-V}"', "a ${...} expansion"),
        ("echo $((V + 1))", "an arithmetic expression ((...))"),
        ("(( V > 0 ))", "an arithmetic expression ((...))"),
        ("echo $[ V ]", "a [...] (arithmetic, test or subscript)"),
        ("[[ V -eq 1 ]]", "a [...] (arithmetic, test or subscript)"),
        ("a[V]=1", "a [...] (arithmetic, test or subscript)"),
        ('echo "${a[V]}"', "a [...] (arithmetic, test or subscript)"),
        ("[ V = 1 ]", WORD),
        ("[[ x ]] && echo V", WORD),
        ("echo hi # V", "a comment"),
        ('echo \\ #"V"', '"..." quotes'),
        ('echo \\ #"\nV"', '"..." quotes'),
        ("cat <<EOF\nV\nEOF", "a here-document"),
        ("cat <<-'EOF'\nV\nEOF", "a here-document"),
    ],
)
def test_where_a_value_lands(command: str, where: str) -> None:
    at = command.index("V")
    assert contexts(command, [at]) == {at: where}


def test_several_marks_and_one_at_the_end() -> None:
    command = "echo V 'V'"
    assert contexts(command, [5, 8, len(command)]) == {
        5: WORD,
        8: "'...' quotes",
        len(command): WORD,
    }
