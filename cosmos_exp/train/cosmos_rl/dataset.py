"""The dataset the cosmos-rl roles are handed: a torch.utils.data.Dataset of our conversations.

cosmos-rl 0.4.7 asserts `isinstance(dataset, torch.utils.data.Dataset)` on what the factory returns
(dispatcher/data/data_fetcher.py: its controller and its workers), then wraps it in its SFT dataset, which
indexes it with an int or, for a batch, a list of ints (policy/worker/sft_worker.py). Imported by the roles
only (entry.py's factory), where cosmos-rl's environment provides torch.
"""

import copy
from typing import Any, Callable, List, Optional, Union

from torch.utils.data import Dataset


class ConversationDataset(Dataset):
    """Map-style dataset of conversations; loaded on first use or in setup(config), as cosmos-rl calls it.
    `load` returns them (picklable, for DataLoader workers: entry.py passes a partial of load_conversations)."""

    def __init__(self, load: Callable[[], List[list]], limit: Optional[int] = None) -> None:
        self.load = load
        self.limit = limit
        self._items: Optional[List[list]] = None

    def setup(self, config: Any) -> None:  # noqa: ARG002 - cosmos-rl's setup(self, config) signature
        self._load()

    def _load(self) -> List[list]:
        if self._items is None:
            self._items = self.load()[:self.limit]
        return self._items

    def __len__(self) -> int:
        return len(self._load())

    def __getitem__(self, index: Union[int, List[int]]) -> Union[list, List[list]]:
        items = self._load()
        # Copies: cosmos-rl's data packers may edit the messages they are given.
        if isinstance(index, (list, tuple)):
            return [copy.deepcopy(items[i]) for i in index]
        return copy.deepcopy(items[index])
