import pytest

from ppvae.registry import Registry, SpecError


class Base:
    pass


def make_registry():
    reg = Registry("widget", base=Base)

    @reg.register("plain")
    class Plain(Base):
        def __init__(self, size: int = 3, latent_dim: int = 1):
            self.size, self.latent_dim = size, latent_dim

    return reg, Plain


def test_build_by_name_dict_and_instance():
    reg, Plain = make_registry()
    a = reg.build("plain", latent_dim=7)
    assert isinstance(a, Plain) and a.size == 3 and a.latent_dim == 7
    b = reg.build({"name": "plain", "size": 5}, latent_dim=2)
    assert (b.size, b.latent_dim) == (5, 2)
    assert reg.build(b) is b
    assert Plain.registry_name == "plain"


def test_context_does_not_override_spec_and_is_dropped_when_not_accepted():
    reg, _ = make_registry()
    assert reg.build({"name": "plain", "latent_dim": 4}, latent_dim=9).latent_dim == 4

    @reg.register("noargs")
    class NoArgs(Base):
        pass

    assert isinstance(reg.build("noargs", latent_dim=3), NoArgs)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nope", "unknown widget 'nope'; registered widgets are: plain"),
        ({"size": 3}, "needs a 'name' key"),
        ({"name": "plain", "sise": 3}, "does not take option(s) 'sise'"),
        (3.5, "must be given as a name"),
    ],
)
def test_bad_specs_name_the_problem(spec, message):
    reg, _ = make_registry()
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        reg.build(spec)
