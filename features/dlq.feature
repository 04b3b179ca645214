Feature: Dead-letter operations
  An operator sees what failed with `ingestctl dlq list` and `show`, narrows
  it with filters, replays what a fix has made good and purges what cannot
  be saved. Reading never changes the dead-letter queue; a replay, even one
  killed half-way and run again, ingests every reading once; a purge deletes
  exactly what it was told to, and only when confirmed.

  Device names are the fleet's own: "press-2" stands for the scenario's
  prefixed id. Dead letters are real failures in a worker where that is
  quick; where a scenario needs failures hours old or thousands of them, it
  puts dead letters with the worker's headers straight into the queue, and
  says so.

  Scenario: Listing and showing real failures of every kind changes nothing
    Given a factory that knows only the device "press-2"
    And a worker that gives a job 2 attempts
    And the factory answers HTTP 500 to every request for "press-2"
    When 1 one-minute job for "ghost-01" is published
    And a body that is not JSON is published
    And 1 one-minute job for "press-2" is published
    Then the dead-letter queue holds 3 dead letters
    When the operator runs "dlq list"
    Then the list shows these dead letters:
      | device   | class     | error                                 | attempts |
      | ghost-01 | permanent | the factory API does not know dev     | 1        |
      | ?        | permanent | the job breaks the contract: body is  | 1        |
      | press-2  | transient | factory API answered 500              | 2        |
    When the operator shows the dead letter of the job for "press-2"
    Then it shows a transient failure after 2 attempts, the error "factory API answered 500 Internal Server Error", the worker and the job's body
    And the dead-letter queue is unchanged, message by message

  Scenario: Filters select exactly the expected dead letters
    # Put straight into the queue: real failures cannot be hours old.
    Given these dead letters, put straight into the dead-letter queue:
      | name | device  | class     | error                                                          | last failure |
      | a    | press-1 | transient | fetching readings failed: factory API answered 503 for press-1 | 5m           |
      | b    | press-2 | permanent | fetching readings failed: the factory API does not know device | 3h           |
      | c    | press-1 | permanent | the factory's readings are invalid: reading 12 has no value    | 2h           |
      | d    | press-3 | transient | writing points to the TSDB failed: TSDB write timed out        | 10m          |
      | e    | ?       | permanent | the job breaks the contract: body is not valid JSON            | 5h           |
    Then listing with each filter shows exactly these dead letters:
      | filter                            | dead letters  |
      |                                   | a, b, c, d, e |
      | --device press-1                  | a, c          |
      | --device press-1 --device press-3 | a, c, d       |
      | --device ?                        | e             |
      | --class transient                 | a, d          |
      | --class permanent                 | b, c, e       |
      | --error-contains FACTORY          | a, b, c       |
      | --error-contains tsdb             | d             |
      | --error-contains no-such-error    |               |
      | --older-than 1h                   | b, c, e       |
      | --newer-than 1h                   | a, d          |
      | --older-than 150m --newer-than 4h | b             |
      | --class permanent --older-than 4h | e             |
      | --limit 2                         | a, b          |
      | --device press-1 --limit 1        | a             |
    And the dead-letter queue is unchanged, message by message

  Scenario: Replaying one device after its cause is fixed ingests it and leaves the rest
    Given a factory that knows only the device "press-2"
    And a worker that gives a job 2 attempts
    And the factory answers HTTP 500 to every request for "press-2"
    When 3 one-minute jobs for "press-2" are published
    And 1 one-minute job for "ghost-01" is published
    And a body that is not JSON is published
    Then the dead-letter queue holds 5 dead letters
    When the factory answers "press-2" again
    And the operator replays the dead letters of "press-2"
    Then every reading of the jobs for "press-2" is in the time-series database exactly once
    And the dead letters of every other device are still in the dead-letter queue, unchanged

  Scenario: A replay of 2,000 dead letters killed half-way and run again ingests every job once
    # Put straight into the queue: 2,000 real failures would take longer
    # than the replay itself. Each job covers 2 seconds, so 2 readings.
    Given 2000 dead letters of 2-second jobs for 20 devices, put straight into the dead-letter queue
    And 2 workers with a prefetch of 500
    When the operator replays every dead letter and the replay is killed with SIGKILL half-way
    Then the killed replay had moved some dead letters but not all
    When the operator replays every dead letter again
    Then every reading of every job is in the time-series database exactly once
    And the dead-letter and work queues are empty

  Scenario: Purge deletes nothing without --yes, and exactly the filtered dead letters with it
    # Put straight into the queue: real failures cannot be hours old.
    Given these dead letters, put straight into the dead-letter queue:
      | name | device  | class     | error                                                          | last failure |
      | a    | press-1 | transient | fetching readings failed: factory API answered 503 for press-1 | 5m           |
      | b    | press-2 | permanent | fetching readings failed: the factory API does not know device | 3h           |
      | c    | press-1 | permanent | the factory's readings are invalid: reading 12 has no value    | 2h           |
      | d    | ?       | permanent | the job breaks the contract: body is not valid JSON            | 5h           |
    When the operator runs "dlq purge --class permanent --older-than 150m"
    Then ingestctl exits with code 2
    And the dead-letter queue is unchanged, message by message
    When the operator runs "dlq purge --yes"
    Then ingestctl exits with code 2
    And the dead-letter queue is unchanged, message by message
    When the operator runs "dlq purge --class permanent --older-than 150m --yes"
    Then ingestctl exits with code 0
    And only the dead letters "a, c" are left, unchanged

  Scenario: Status reports the counts the management API reports
    # Put straight into the queue: the status does not care how they came.
    Given these dead letters, put straight into the dead-letter queue:
      | name | device  | class     | error                                               | last failure |
      | a    | press-1 | transient | fetching readings failed: factory API answered 503  | 5m           |
      | b    | ?       | permanent | the job breaks the contract: body is not valid JSON | 1h           |
    And 4 jobs waiting in the work queue
    Then status reports what the management API reports: 4 jobs ready with 0 consumers in the work queue, 2 dead letters
    And status exits with code 3, naming "has no consumers"
    When a worker starts
    Then status reports what the management API reports: 0 jobs ready with 1 consumer in the work queue, 2 dead letters
    And status exits with code 0
