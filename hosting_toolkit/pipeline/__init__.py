"""The release pipeline: CodePipeline and CodeBuild building a site from its source and releasing it."""
