"""The CLI's data access: every AWS call the commands make, each inside ``clients.calling``
(the rule: ``asyncinfer.cli``)."""
