"""Protocol-level fakes of the AWS services the release engine talks to, and test-site builders."""
