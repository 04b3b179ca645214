Feature: Reliability
  Whatever fails — the factory API, the TSDB, the broker, a worker, or the
  job itself — every job ends either with each of its readings stored exactly
  once or in the dead-letter queue with the reason, never lost.

  Scenario: Two 503s from the factory are retried within the attempt
    Given a fleet with one worker
    And the factory answers 503 to the next 2 requests for device "m0"
    When a job of 60 minutes is published for device "m0"
    Then every reading is in the time-series database exactly once
    And every job is acked
    And the worker retried no job
    And the factory was asked 6 times
    And nothing is dead-lettered

  Scenario: A 429 with Retry-After is waited out before the next request
    Given a fleet with one worker
    And the factory answers 429 with Retry-After 2 seconds to the next request for device "m0"
    When a job of 10 minutes is published for device "m0"
    Then the factory is asked again only after 2 seconds
    And every reading is in the time-series database exactly once
    And every job is acked
    And nothing is dead-lettered

  Scenario: A job the factory always fails passes every delay tier, then is dead-lettered
    Given a fleet with one worker
    And the factory answers 500 to every request
    When a job of 10 minutes is published for device "m0"
    Then within 30 seconds the job is dead-lettered as transient after 5 attempts
    And its error names "factory API answered 500 Internal Server Error"
    And its last failure is at least 2 seconds after its first
    And its body is the body that was published
    And the worker retried the job 4 times

  Scenario: A device the factory does not know is dead-lettered at once
    Given a fleet whose factory knows only device "m0", with one worker
    When a job of 10 minutes is published for device "m9"
    Then within 5 seconds the job is dead-lettered as permanent after 1 attempt
    And its error names "the factory API does not know device"
    And the worker retried no job

  Scenario Outline: A job that breaks the contract is dead-lettered with its reason
    Given a fleet with one worker
    When a job with <problem> is published
    And a job of 10 minutes is published for device "m0"
    Then within 10 seconds the bad job is dead-lettered as permanent after 1 attempt
    And its error names "<reason>"
    And every reading is in the time-series database exactly once

    Examples:
      | problem                      | reason                                                                             |
      | invalid JSON                 | body is not valid JSON                                                             |
      | version 2                    | field `version` is 2, but only version 1 is supported                              |
      | a body of 70000 bytes        | body is 70000 bytes, over the limit of 65536 bytes                                 |
      | a reversed range             | range is empty or reversed                                                         |
      | a range of 7 days and 1 hour | range spans 7days 1h, over the maximum of 7days                                    |
      | device "../admin"            | field `device` must start with an ASCII letter or digit, got "../admin"            |
      | device "a%2Fb"               | field `device` may only hold ASCII letters, digits, '.', '_' and '-', got "a%2Fb"    |
      | device "press 07"            | field `device` may only hold ASCII letters, digits, '.', '_' and '-', got "press 07" |
      | device "prèss"               | field `device` may only hold ASCII letters, digits, '.', '_' and '-', got "prèss"    |

  Scenario: Readings that cannot be mapped fail the job permanently
    Given a fleet with one worker
    And every 100th reading of device "m0" has a non-numeric temperature
    When a job of 60 minutes is published for device "m0"
    Then within 10 seconds the job is dead-lettered as permanent after 1 attempt
    And its error names "36 of the job's readings cannot be written; the first, reading 99 of the range, has a non-numeric"
    And device "m0" has no points in the time-series database

  Scenario: With --skip-invalid-readings the valid readings are written and the invalid counted
    Given a fleet with one worker started with "--skip-invalid-readings"
    And every 100th reading of device "m0" has a non-numeric temperature
    When a job of 60 minutes is published for device "m0"
    Then every reading but every 100th is in the time-series database exactly once
    And every job is acked
    And the worker counted 36 invalid readings
    And nothing is dead-lettered

  Scenario: A worker killed in the middle of a job leaves it to another worker
    Given a fleet with one worker started with "--page-limit 300 --batch-points 1000"
    And the factory takes 150 ms to answer each request
    When jobs of 60 minutes are published for 2 devices
    And the worker is killed once the factory has served 8 requests
    And another worker is started with "--page-limit 300 --batch-points 1000"
    Then every reading is in the time-series database exactly once
    And the work queue is empty
    And nothing is dead-lettered

  Scenario: SIGTERM lets the jobs in flight finish
    Given a fleet with one worker started with "--page-limit 600 --grace-period 10s"
    And the factory takes 200 ms to answer each request
    When jobs of 60 minutes are published for 3 devices
    And the worker is sent SIGTERM while 3 jobs are in flight
    Then the worker exits with status 0 within 10 seconds
    And every reading is in the time-series database exactly once
    And the work queue is empty
    And nothing is dead-lettered

  Scenario: SIGTERM returns a job that cannot finish within the grace period
    Given a fleet with one worker started with "--grace-period 1s"
    And the factory takes 5000 ms to answer each request
    When a job of 10 minutes is published for device "m0"
    And the worker is sent SIGTERM while 1 job is in flight
    Then the worker exits with status 0 after 1 to 5 seconds
    And the job is back in the work queue
    When the factory answers at once
    And another worker is started
    Then every reading is in the time-series database exactly once
    And the work queue is empty
    And nothing is dead-lettered

  Scenario: Workers reconnect after the broker closes their connections
    Given a fleet with 2 workers started with "--page-limit 600"
    And the factory takes 100 ms to answer each request
    When jobs of 60 minutes are published for 4 devices
    And the broker closes every worker connection once the factory has served 4 requests
    Then every worker reconnects
    And every reading is in the time-series database exactly once
    And the work queue is empty
    And nothing is dead-lettered

  Scenario: A TSDB outage opens the circuit and loses no job
    Given a fleet with one worker started with "--write-timeout 2s --circuit-threshold 3"
    When jobs of 10 minutes are published for 2 devices
    And the time-series database stops answering once those readings are stored
    And jobs of 10 minutes are published for 4 devices
    Then the worker's circuit for the tsdb opens within 15 seconds
    When the time-series database answers again 20 seconds after it stopped
    Then every reading is in the time-series database exactly once
    And the worker's circuit for the tsdb is closed
    And the work queue is empty
    And nothing is dead-lettered

  Scenario: The same job published twice stores each reading once
    Given a fleet with one worker
    When a job of 60 minutes is published twice for device "m0"
    Then every job is acked
    And every reading is in the time-series database exactly once
    And nothing is dead-lettered

  Scenario: A job waiting for its retry is held by the delay queue, not by a worker
    Given a fleet with one worker whose retries wait 8s, with at most 2 attempts
    And the factory answers 500 to every request
    When a job of 10 minutes is published for device "m0"
    Then while the job waits for its retry, delay queue "8s" holds it and the work queue holds nothing
    And within 20 seconds the job is dead-lettered as transient after 2 attempts

  Scenario: A worker refuses a work queue declared with other arguments
    Given a fleet whose work queue was declared as a classic queue
    When a worker is started
    Then the worker exits with a failure within 10 seconds
    And its log names the work queue and "inequivalent arg 'x-dead-letter-exchange'"
