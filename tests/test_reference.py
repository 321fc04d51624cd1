"""Every citation of the reference notes in the code and the READMEs names a heading of dip_jax/REFERENCE.md.

A citation is the word REFERENCE followed by a section sign and a number ("REFERENCE §4.3"), possibly across
a line break. Further section numbers in the same sentence belong to it ("§3.1, §6.17", "§4.2-§4.3",
"§1.4-1.8": both ends of a range), except one right after a bracketed tag such as "[P] §2", which names
a section of the paper. A number resolves when the document has a heading with that number or one below it
(§3 resolves through "### 3.1"); a period after the number ("§4.3.") ends the sentence, not the number.
Plain file reading only: no import of dip_jax, no JAX.
"""

from __future__ import annotations

import configparser
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "dip_jax" / "REFERENCE.md"
SCANNED_DIRS = ("dip_jax", "experiments", "benchmarks", "tests")
READMES = ("README.md", "benchmarks/README.md", "experiments/README.md")
SUFFIXES = (".py", ".md")

_NUMBER = r"\d+(?:\.\d+)*"
_ANCHOR = re.compile(r"REFERENCE\s+§\s*(?=\d)")
# A citation's sentence ends at a period before a space, a closing bracket or quote, or the end of the
# text; at a blank line; or after 400 characters.
_SENTENCE_END = re.compile(r"\.(?=[\s)\]\"'`]|$)|\n[ \t]*\n")
# A section number, or a range "§a-§b" / "§a-b"; the number after a tag like "[P] " is not ours.
_SECTION = re.compile(rf"(?<!\]\s)(?<!\])§\s*({_NUMBER})(?:\s*[-–]\s*§?\s*({_NUMBER}))?")
_HEADING = re.compile(rf"^#{{1,6}}\s+({_NUMBER})\.?\s")


def _sentence(text: str, start: int) -> str:
    """The text from a citation's anchor to the end of its sentence."""
    window = text[start : start + 400]
    # Search from after the anchor's own number: the period of "§4.3." then ends the sentence.
    first = re.match(rf"REFERENCE\s+§\s*{_NUMBER}", window)
    end = _SENTENCE_END.search(window, first.end())
    return window[: end.start() if end else len(window)]


def citations(text: str) -> list[tuple[int, str]]:
    """(line, number) of every section number cited, in order; a range gives both of its ends."""
    found = []
    for anchor in _ANCHOR.finditer(text):
        sentence = _sentence(text, anchor.start())
        for m in _SECTION.finditer(sentence):
            line = text.count("\n", 0, anchor.start() + m.start()) + 1
            found.extend((line, number) for number in m.groups() if number)
    return sorted(set(found))


def headings(markdown: str) -> list[str]:
    """The numbers of the document's numbered headings ("## 6. Quirks" gives "6"), outside code fences."""
    numbers, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line)):
            numbers.append(m.group(1))
    return numbers


def resolves(number: str, numbers) -> bool:
    return any(h == number or h.startswith(number + ".") for h in numbers)


def scanned_files() -> list[pathlib.Path]:
    files = [ROOT / name for name in READMES if (ROOT / name).is_file()]
    for folder in SCANNED_DIRS:
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.suffix in SUFFIXES and p.is_file())
    return [p for p in files if p != DOCUMENT]


def test_every_citation_names_a_heading():
    numbers = headings(DOCUMENT.read_text(encoding="utf-8"))
    cited, unresolved = 0, []
    for path in scanned_files():
        for line, number in citations(path.read_text(encoding="utf-8")):
            cited += 1
            if not resolves(number, numbers):
                unresolved.append(f"{path.relative_to(ROOT)}:{line}: §{number}")
    assert cited > 50, f"only {cited} citations found: is the pattern still right?"
    assert not unresolved, "citations with no heading in dip_jax/REFERENCE.md:\n" + "\n".join(unresolved)


def test_numbered_headings_are_unique():
    numbers = headings(DOCUMENT.read_text(encoding="utf-8"))
    assert {"0", "1.1", "3.2", "4.3", "6.17", "7"} <= set(numbers)
    assert len(numbers) == len(set(numbers)), sorted(n for n in set(numbers) if numbers.count(n) > 1)


def test_the_package_ships_the_document():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    assert "REFERENCE.md" in config["options.package_data"]["dip_jax"].split()


# The parser on made-up text; the tag is spelled in two pieces so that this file cites nothing itself.
_TAG = "REFER" + "ENCE"


def test_citation_forms():
    text = (
        f"a ({_TAG} §4.3.)\n"  # trailing period
        f"b ({_TAG} §3.1, §6.17); c\n"  # a list
        f"d ({_TAG} §3.2 'Super-resolution', §4, §5.2).\n"  # labels between
        f"e ({_TAG} §4.2-§4.3 and §5) f ({_TAG} §1.4-1.8).\n"  # ranges
        f"g ({_TAG}\n§6.12); h\n"  # across a line break
        f"i ({_TAG} §2, but [P] §9 is the paper's).\n"  # a tag's section is not ours
        f"j ({_TAG} §7). Later §9.9 is not part of it.\n"
    )
    assert citations(text) == sorted(
        {
            (1, "4.3"),
            (2, "3.1"),
            (2, "6.17"),
            (3, "3.2"),
            (3, "4"),
            (3, "5.2"),
            (4, "4.2"),
            (4, "4.3"),
            (4, "5"),
            (4, "1.4"),
            (4, "1.8"),
            (6, "6.12"),
            (7, "2"),
            (8, "7"),
        }
    )
    assert resolves("3", ["3.1"]) and resolves("4.3", ["4.3"]) and not resolves("4.31", ["4.3"])
    assert not resolves("1", ["10.1"])
