"""Trust and safety: the rules of the shared list and what defends it. `policy` (who may do
what, what may be shared, who sees what, how votes change a status), `taxonomy` (labels),
`keys` (API keys, kept only as HMACs), `audit` (the hash-chained log), `safelist` and `spike`
(poisoning defences), `incidents` and `webhooks` (the crisis protocol) and `report` (the
transparency report). Modules here may import `types`, `errors`, `config`, `hashing`, `index`
and the `store` protocol; never `service`, `partners`, `cli` or `api`, which build on them."""
