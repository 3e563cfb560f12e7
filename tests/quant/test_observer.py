"""Observers: statistics over batches equal the statistics of all the data at once."""

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import choose_qparams
from numfmt.quant.observer import Observer
from numfmt.quant.synthetic import synthetic


def _batches(n=5, shape=(32, 64), dist="normal"):
    return [synthetic(dist, shape, seed=i) * (1 + i) for i in range(n)]


def test_running_minmax_is_the_minmax_of_everything():
    batches = _batches()
    obs = Observer("int8/asym/channel")
    for b in batches:
        obs.update(b)
    everything = np.concatenate(batches, axis=1)
    assert np.array_equal(
        obs.qparams().scale, choose_qparams(everything, "int8/asym/channel").scale
    )
    assert obs.batches == 5


def test_moving_average():
    obs = Observer("int8/asym", averaging="moving", momentum=0.5)
    obs.update(np.array([0.0, 4.0])).update(np.array([0.0, 2.0]))
    assert float(obs.hi) == 3.0


@pytest.mark.parametrize("method", ["percentile:99.9", "entropy", "l2_histogram", "mse"])
def test_histogram_methods_agree_with_the_methods_on_all_the_data(method):
    batches = _batches(4, (1, 20000), "laplace")
    obs = Observer(f"int8/{method}")
    for b in batches:
        obs.update(b)
    everything = np.concatenate(batches, axis=1)
    direct = choose_qparams(everything, f"int8/{method}")
    assert float(obs.qparams().hi) == pytest.approx(float(direct.hi), rel=0.08)


def test_the_histogram_widens_without_losing_counts():
    obs = Observer("int8/percentile:50", bins=64)
    obs.update(np.linspace(-1, 1, 1001)).update(np.linspace(-5, 5, 1001))
    assert obs.hist.sum() == pytest.approx(2002)
    assert obs.edges[-1] == pytest.approx(5.0)


def test_observer_refusals():
    with pytest.raises(NumfmtError, match="per tensor only"):
        Observer("int8/channel/entropy")
    with pytest.raises(NumfmtError, match="seen no data"):
        Observer("int8").qparams()
    obs = Observer("int8/channel").update(np.ones((4, 3)))
    with pytest.raises(NumfmtError, match="groups"):
        obs.update(np.ones((5, 3)))
    with pytest.raises(NumfmtError, match="NaN"):
        obs.update(np.array([[np.nan, 1, 2]] * 4))
    with pytest.raises(NumfmtError, match="averaging"):
        Observer("int8", averaging="sometimes")


def test_an_observer_takes_torch_batches_and_gives_tensor_qparams():
    torch = pytest.importorskip("torch")
    obs = Observer("int8/asym/channel")
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 100, generator=g) for _ in range(3)]
    for b in batches:
        obs.update(b)
    qp = obs.qparams()
    assert isinstance(qp.scale, torch.Tensor)
    both = torch.cat(batches, dim=1)
    assert torch.equal(qp.lo, both.amin(dim=1).double())
    assert torch.equal(qp.hi, both.amax(dim=1).double())
