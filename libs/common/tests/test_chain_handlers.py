"""Several read models handling one event type: each handler runs, in the order given."""
from libs.common.consumer import chain_handlers


async def test_handlers_of_one_type_run_in_order_and_others_stay_alone():
    calls: list[tuple[str, str]] = []

    def recorder(name: str):
        async def handle(session, event) -> None:
            calls.append((name, event))
        return handle

    only_a = recorder("a-only")
    chained = chain_handlers({"x.happened": recorder("a"), "y.happened": only_a},
                             {"x.happened": recorder("b")})
    assert set(chained) == {"x.happened", "y.happened"}
    assert chained["y.happened"] is only_a
    await chained["x.happened"](None, "event-1")
    assert calls == [("a", "event-1"), ("b", "event-1")]
