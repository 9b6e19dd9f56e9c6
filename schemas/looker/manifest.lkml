# Railyard's LookML project. The views read the BigQuery serving views of
# one dataset; set its project and dataset here, or override them where
# this project is imported.
project_name: "railyard"

constant: project {
  value: "my-project"
  export: override_optional
}

constant: dataset {
  value: "railyard"
  export: override_optional
}
