from .base import Bus, BusUnavailable, Consumer, Message, OutgoingMessage, create_bus

__all__ = ["Bus", "BusUnavailable", "Consumer", "Message", "OutgoingMessage", "create_bus"]
