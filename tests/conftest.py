pytest_plugins = ["tests.support.db_fixtures", "tests.support.vllm_fixtures", "tests.support.testbed_fixtures"]
