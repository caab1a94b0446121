from gateway.recent import Recent


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_values_expire_at_the_age_asked_for_and_the_oldest_go_first() -> None:
    clock = Clock()
    recent: Recent[str, int] = Recent(max_entries=2, clock=clock)
    recent.put("a", 1)
    clock.now = 0.5
    assert recent.get("a", 1.0) == 1 and recent.get("a", 0.4) is None
    clock.now = 1.5
    assert recent.get("a", 1.0) is None
    recent.put("a", 2)
    recent.put("b", 3)
    recent.put("c", 4)  # over two entries: the least recently put goes
    assert recent.get("a", 10.0) is None and recent.get("b", 10.0) == 3 and recent.get("c", 10.0) == 4
