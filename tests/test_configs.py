"""The shared YAML loader: presets compose, overrides apply, bad keys/values are one-line errors."""

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import pytest
import yaml

import configs
from configs import ConfigError


@dataclass
class Inner:
    n: int = 1
    kind: Literal["a", "b"] = "a"

    def __post_init__(self):
        if self.n < 0:
            raise ValueError(f"n={self.n} must be >= 0")


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)


def test_defaults_and_dotted_overrides():
    cfg = configs.load(Outer, None, ["inner.n=8", "name=y"])
    assert cfg == Outer(name="y", inner=Inner(n=8))


def test_yaml_with_base_files(tmp_path):
    (tmp_path / "preset.yaml").write_text("inner:\n  n: 3\n  kind: b\n")
    (tmp_path / "exp.yaml").write_text("base: [preset.yaml]\nname: exp\ninner:\n  n: 5\n")
    cfg = configs.load(Outer, tmp_path / "exp.yaml")
    assert cfg == Outer(name="exp", inner=Inner(n=5, kind="b"))


@pytest.mark.parametrize(
    "override, match",
    [
        ("inner.m=3", "inner.m"),
        ("inner.n=abc", "abc"),
        ("inner.kind=c", "'c'.*a.*b"),
        ("inner.n=-1", "n=-1"),
        ("nonsense", "key=value"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, match):
    with pytest.raises(ConfigError, match=match) as e:
        configs.load(Outer, None, [override])
    assert "\n" not in str(e.value)


def test_base_entry_nests_component_preset(tmp_path):
    (tmp_path / "inner.yaml").write_text("n: 7\n")
    (tmp_path / "exp.yaml").write_text("base: [{inner: inner.yaml}]\nname: e\n")
    assert configs.load(Outer, tmp_path / "exp.yaml") == Outer(name="e", inner=Inner(n=7))


def test_bad_base_entry(tmp_path):
    (tmp_path / "exp.yaml").write_text("base: [3]\n")
    with pytest.raises(ConfigError, match="base entry 3"):
        configs.load(Outer, tmp_path / "exp.yaml")


def test_unknown_key_in_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("inner:\n  typo: 1\n")
    with pytest.raises(ConfigError, match="typo") as e:
        configs.load(Outer, p)
    assert "\n" not in str(e.value)


def test_missing_file_names_it():
    with pytest.raises(ConfigError, match="no-such-config"):
        configs.load(Outer, "no-such-config")


def test_include_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("base: [b.yaml]\n")
    (tmp_path / "b.yaml").write_text("base: [a.yaml]\n")
    with pytest.raises(ConfigError, match="includes itself"):
        configs.load(Outer, tmp_path / "a.yaml")


def test_shipped_experiment_configs_load():
    from agents.config import ExperimentConfig

    for name in configs.available("experiment"):
        cfg = configs.load(ExperimentConfig, name)
        assert isinstance(cfg, ExperimentConfig)


# ------------------------------------------ YAML 1.1 words (on/off/yes/no/y/n): booleans unless text is wanted


@dataclass
class Words:
    choice: Literal["off", "on", "auto"] = "auto"
    text: str = ""
    maybe: Optional[str] = None
    names: list[str] = field(default_factory=list)
    flag: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    anything: Any = None
    inners: dict[str, Inner] = field(default_factory=dict)


def test_a_bare_word_is_the_word_where_the_schema_wants_text_and_a_boolean_elsewhere(tmp_path):
    text = (
        "choice: off\ntext: no\nmaybe: yes\nnames: [on, off, 'n']\nflag: on\n"
        "extra: {a: [on, off], b: 'off', c: no}\nanything: off\n"
    )
    (tmp_path / "w.yaml").write_text(text)
    want = Words(
        choice="off",
        text="no",
        maybe="yes",
        names=["on", "off", "n"],
        flag=True,
        extra={"a": [True, False], "b": "off", "c": False},  # untyped: as yaml.safe_load reads it
        anything=False,
    )
    assert configs.load(Words, tmp_path / "w.yaml") == want
    overrides = [
        "choice=off",
        "text=no",
        "maybe=yes",
        "names=[on, off, 'n']",
        "flag=on",
        "extra.a=[on, off]",
        "extra.b='off'",
        "extra={c: no}",
        "anything=off",
    ]
    assert configs.load(Words, None, overrides) == want
    assert configs.load_yaml(text) == yaml.safe_load(text)  # no schema: yaml.safe_load's reading


@dataclass
class Nest:
    words: Words = field(default_factory=Words)
    many: dict[str, Words] = field(default_factory=dict)


def test_bare_words_in_nested_presets_and_dicts_of_dataclasses(tmp_path):
    (tmp_path / "words.yaml").write_text("choice: off\nextra: {c: no}\n")
    (tmp_path / "nest.yaml").write_text(
        "base: [{words: words.yaml}]\nmany: {x: {choice: on, anything: on}}\n"
    )
    cfg = configs.load(Nest, tmp_path / "nest.yaml", ["many.y.choice=off", "many.y.extra.c=no"])
    assert (cfg.words.choice, cfg.words.extra) == ("off", {"c": False})
    assert (cfg.many["x"].choice, cfg.many["x"].anything) == ("on", True)
    assert (cfg.many["y"].choice, cfg.many["y"].extra) == ("off", {"c": False})


def test_a_bare_word_for_a_text_option_in_an_options_dict_is_one_line():
    # options dicts are typed only once their env / algorithm is known: a bare off there is the YAML 1.1
    # boolean, which OmegaConf would have turned into the text 'False' without a word
    from agents.config import ExperimentConfig
    from agents.eval_config import EvalConfig

    with pytest.raises(configs.ConfigError, match=r"env\.options\.id=False: this option takes text") as e:
        configs.load(ExperimentConfig, None, ["env.name=pettingzoo", "env.options={id: off}"])
    assert "\n" not in str(e.value) and "quote the word" in str(e.value)
    quoted = configs.load(ExperimentConfig, None, ["env.name=pettingzoo", "env.options={id: 'off'}"])
    assert quoted.env.opts.id == "off"
    with pytest.raises(configs.ConfigError, match=r"options\.pool=False: this option takes text"):
        configs.load(EvalConfig, "eval/smoke", ["algorithms.SRMT.options.pool=off"])
    ok = configs.load(EvalConfig, "eval/smoke", ["algorithms.SRMT.options.pool=own"])
    assert ok.algorithms["SRMT"].options["pool"] == "own"


def test_experiment_words_compile_off_and_untyped_no():
    from agents.config import load_experiment

    exp = load_experiment(
        "bottleneck-srmt",
        ["train.compile=off", "train.autocast=off", "train.sf_overrides.with_vtrace=no"],
    )
    assert (exp.train.compile, exp.train.autocast) == ("off", "off")
    assert exp.train.sf_overrides["with_vtrace"] is False  # 'no' would be a truthy string
