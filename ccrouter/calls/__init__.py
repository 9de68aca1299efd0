"""The call-card pipeline every feature stands on: the pure call book and card fields
(`model/`), the tracker (AMI events -> card writes), the group-committing card writer, card
numbers, the card queries and the live view of queues and operators."""
