"""One data kind, one name in each room: the data room's ``DataKind``, the spec room's
``SpecKind`` (section model, starter, shape) and the export room's ``DataForm`` are registered
once each under the same names, and a spec's ``kind:`` takes those names and their synonyms."""

from __future__ import annotations

from nncli.data.kinds import KINDS, SYNONYMS
from nncli.export.inputs import KINDS as EXPORT_KINDS
from nncli.spec.kinds import DATA_KINDS, SPEC_KINDS
from nncli.spec.starter import SHAPES, STARTERS


def test_every_room_registers_each_data_kind_once_under_its_name():
    assert set(SPEC_KINDS) == set(KINDS) == set(EXPORT_KINDS)
    assert set(STARTERS) == set(SHAPES) == set(KINDS)
    assert all(kind.reads for kind in KINDS.values())


def test_a_specs_kind_takes_each_name_and_synonym_and_table_is_csv():
    assert set(DATA_KINDS) == set(KINDS) | set(SYNONYMS)
    assert DATA_KINDS["table"] is DATA_KINDS["csv"] and SYNONYMS == {"table": "csv"}
    for name, kind in SPEC_KINDS.items():
        assert DATA_KINDS[name] is kind.section
