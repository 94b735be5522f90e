from __future__ import annotations

import llm_client
import llm_client.providers


def test_all_lists_every_lazy_export_and_each_resolves() -> None:
    assert set(llm_client.__all__) == {"__version__", *llm_client._EXPORTS}
    for name in llm_client._EXPORTS:
        assert getattr(llm_client, name) is not None, name
    assert set(llm_client.providers.__all__) == set(llm_client.providers._EXPORTS)


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        llm_client.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
