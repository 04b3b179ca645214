Feature: Ingestion
  Jobs of a device and a time range become points in the time-series
  database, each reading exactly once.

  Scenario: Everything alright
    Given the factory source serves correct data
    And the time-series database is available
    When an import is run for 2 devices over 2 hours in 1-hour windows
    Then every reading is in the time-series database exactly once
    And every job is acked
    And nothing is dead-lettered
