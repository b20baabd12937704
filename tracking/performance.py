"""The performance report: one row per link for a date range, read from the daily rollups."""

from config.placeholder import empty_page

performance_view = empty_page("Performance")
