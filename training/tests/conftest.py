"""Fixtures shared by the training tests."""
import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Small models on 2 shared cores run faster with one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
