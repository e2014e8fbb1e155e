"""Customer care: reviews by a person, suspensions of the right to apply, and telling a customer
once when an outage delays their decision."""
