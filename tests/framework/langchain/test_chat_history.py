# Vendored from langchain-core 1.7.2 (PyPI sdist langchain_core-1.7.2.tar.gz,
# tests/unit_tests/chat_history/test_chat_history.py). MIT License, Copyright (c) LangChain, Inc.
# (full text: LICENSE.langchain-core beside this file, copied from that sdist).
#
# Adapted only to construct rmem's history; every change is marked "rmem:":
# - InMemoryChatMessageHistory() and the in-test SampleChatHistory / BulkAddHistory classes are
#   replaced by new_history() (an RmemChatMessageHistory on the test run's Redis); the lists
#   those classes appended to are read back through MessagesView(history); a history given
#   its first messages at construction gets them with add_messages.
# - test_chat_history_deprecated checks LangChain's own classes' docstrings, unchanged; it is
#   skipped on langchain-core < 1.6.4, which did not have that deprecation yet.
# - Formatted by ruff to rmem's line length; a module-level importorskip added.
import pytest

pytest.importorskip("langchain_core")  # rmem: skipped without the langchain extra

from langchain_core.chat_history import (
    BaseChatMessageHistory,
    InMemoryChatMessageHistory,
)
from langchain_core.messages import HumanMessage

from tests.framework.langchain._rmem import LC_VERSION as _LC_VERSION  # rmem
from tests.framework.langchain._rmem import MessagesView, new_history  # rmem


@pytest.mark.skipif(  # rmem: the deprecation it checks landed in langchain-core 1.6.4
    _LC_VERSION < (1, 6, 4), reason="langchain-core < 1.6.4 does not deprecate chat histories"
)
@pytest.mark.parametrize("history_class", [BaseChatMessageHistory, InMemoryChatMessageHistory])
def test_chat_history_deprecated(history_class: type[BaseChatMessageHistory]) -> None:
    assert "deprecated" in (history_class.__doc__ or "")
    assert "https://docs.langchain.com/oss/python/langchain/short-term-memory" in (
        history_class.__doc__ or ""
    )


async def test_in_memory_history_initialization() -> None:
    messages = [HumanMessage(content="Hello")]
    history = new_history()  # rmem: was InMemoryChatMessageHistory(messages=messages)
    history.add_messages(messages)  # rmem
    assert await history.aget_messages() == messages
    other_history = new_history()  # rmem: was InMemoryChatMessageHistory()
    await other_history.aadd_messages([HumanMessage(content="World")])
    assert history.messages == messages
    await history.aclear()
    assert history.messages == []
    assert other_history.messages == [HumanMessage(content="World")]


def test_add_message_implementation_only() -> None:
    """Test implementation of add_message only."""
    chat_history = new_history()  # rmem: was SampleChatHistory(store=store)
    store = MessagesView(chat_history)  # rmem: was the list SampleChatHistory appended to
    chat_history.add_message(HumanMessage(content="Hello"))
    assert len(store) == 1
    assert store[0] == HumanMessage(content="Hello")
    chat_history.add_message(HumanMessage(content="World"))
    assert len(store) == 2
    assert store[1] == HumanMessage(content="World")

    chat_history.add_messages(
        [
            HumanMessage(content="Hello"),
            HumanMessage(content="World"),
        ]
    )
    assert len(store) == 4
    assert store[2] == HumanMessage(content="Hello")
    assert store[3] == HumanMessage(content="World")


def test_bulk_message_implementation_only() -> None:
    """Test that SampleChatHistory works as expected."""
    chat_history = new_history()  # rmem: was BulkAddHistory(store=store)
    store = MessagesView(chat_history)  # rmem: was the list BulkAddHistory extended
    chat_history.add_message(HumanMessage(content="Hello"))
    assert len(store) == 1
    assert store[0] == HumanMessage(content="Hello")
    chat_history.add_message(HumanMessage(content="World"))
    assert len(store) == 2
    assert store[1] == HumanMessage(content="World")

    chat_history.add_messages(
        [
            HumanMessage(content="Hello"),
            HumanMessage(content="World"),
        ]
    )
    assert len(store) == 4
    assert store[2] == HumanMessage(content="Hello")
    assert store[3] == HumanMessage(content="World")


async def test_async_interface() -> None:
    """Test async interface for BaseChatMessageHistory."""
    chat_history = new_history()  # rmem: was BulkAddHistory()
    await chat_history.aadd_messages(
        [
            HumanMessage(content="Hello"),
            HumanMessage(content="World"),
        ]
    )
    assert await chat_history.aget_messages() == [
        HumanMessage(content="Hello"),
        HumanMessage(content="World"),
    ]
    await chat_history.aadd_messages([HumanMessage(content="!")])
    assert await chat_history.aget_messages() == [
        HumanMessage(content="Hello"),
        HumanMessage(content="World"),
        HumanMessage(content="!"),
    ]
    await chat_history.aclear()
    assert await chat_history.aget_messages() == []
