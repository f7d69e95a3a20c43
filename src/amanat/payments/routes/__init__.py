"""HTTP edges of payments: payouts, collections, refunds, banks and the rail's callbacks."""
