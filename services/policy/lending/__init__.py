"""Lending: each drawdown decided at once against the customer's window and balance, each
repayment applied (the book's `draw` and `repay` rules)."""
