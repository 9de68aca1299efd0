"""Pure: routing decisions (`decide`) and skills -> queue penalties (`skills`)."""
