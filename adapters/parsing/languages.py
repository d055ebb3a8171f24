"""French, Dutch and Spanish labels: how localized notifications name each field.

The same shape as :mod:`adapters.parsing.synonyms` (English, German). Labels are
compared folded (accents dropped, ``ß`` → ``ss``), so ``Téléphone`` and
``Telephone`` are one synonym. :func:`multilingual` builds the table every portal
starts from: these three under English and German, so a word two languages share
goes to the English or German meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from leadrelay.adapters.parsing.labels import LabelTable, normalise_label
from leadrelay.adapters.parsing.synonyms import ENGLISH, GERMAN

FRENCH: dict[str, tuple[str, ...]] = {
    "external_id": (
        "référence",
        "numéro de demande",
        "n° de demande",
        "id de la demande",
        "référence de la demande",
        "numéro de référence",
        "identifiant",
        "référence du lead",
        "numéro de dossier",
    ),
    "kind": ("type de demande", "nature de la demande", "objet de la demande"),
    "received_at": (
        "reçue le",
        "reçu le",
        "date de la demande",
        "envoyée le",
        "date de réception",
        "créée le",
    ),
    "contact": ("client", "demandeur", "prospect", "coordonnées", "locataire"),
    "contact.full_name": (
        "nom",
        "nom complet",
        "votre nom",
        "nom du client",
        "nom et prénom",
        "nom du contact",
    ),
    "contact.first_name": ("prénom",),
    "contact.last_name": ("nom de famille",),
    "contact.email": ("courriel", "adresse e-mail", "adresse email", "adresse électronique", "adresse mail"),
    "contact.phone": ("téléphone", "tél", "numéro de téléphone", "portable", "téléphone portable", "mobile"),
    "contact.company": (
        "société",
        "entreprise",
        "raison sociale",
        "nom de la société",
        "nom de l'entreprise",
    ),
    "requirements.desks": (
        "postes",
        "postes de travail",
        "nombre de postes",
        "nombre de postes de travail",
        "personnes",
        "nombre de personnes",
        "effectif",
        "taille de l'équipe",
        "collaborateurs",
        "nombre de collaborateurs",
        "nombre de salariés",
        "capacité",
    ),
    "requirements.workspace_type": ("type de bureau", "type d'espace", "type de poste", "type de surface"),
    "requirements.budget": (
        "loyer",
        "prix",
        "tarif",
        "budget mensuel",
        "loyer mensuel",
        "budget max",
        "loyer max",
    ),
    "requirements.start_date": (
        "date d'entrée",
        "date d'emménagement",
        "emménagement",
        "date de début",
        "début",
        "date souhaitée",
        "entrée souhaitée",
        "date d'arrivée",
        "disponibilité souhaitée",
        "à partir du",
        "entrée",
    ),
    "requirements.term_months": (
        "durée",
        "durée du bail",
        "durée d'engagement",
        "engagement",
        "durée du contrat",
        "durée souhaitée",
    ),
    "requirements.size_sqm": ("surface", "superficie", "surface souhaitée"),
    "requirements.area": ("ville", "quartier", "secteur", "arrondissement", "localisation souhaitée", "zone"),
    "listing": ("espace", "bien", "centre d'affaires", "immeuble", "annonce", "bâtiment", "espace demandé"),
    "listing.id": ("référence de l'annonce", "id de l'espace", "référence du bien"),
    "listing.name": ("nom de l'espace", "nom du centre", "nom de l'immeuble", "nom du bien"),
    "broker.contact": ("nom du conseiller", "nom du consultant"),
    "listing.address": ("adresse du bien", "adresse de l'espace", "adresse"),
    "broker": (
        "conseiller",
        "votre conseiller",
        "consultant",
        "chargé d'affaires",
        "chargé de compte",
        "votre chargé de compte",
        "interlocuteur",
    ),
    "message": ("commentaire", "commentaires", "remarques", "précisions", "votre message", "informations"),
    "viewing_at": ("visite", "date de visite", "visite souhaitée", "créneau de visite", "rendez-vous"),
}

DUTCH: dict[str, tuple[str, ...]] = {
    "external_id": (
        "referentie",
        "referentienummer",
        "aanvraagnummer",
        "aanvraag id",
        "kenmerk",
        "dossiernummer",
    ),
    "kind": ("soort aanvraag", "type aanvraag"),
    "received_at": ("ontvangen", "ontvangen op", "datum aanvraag", "aangemaakt op", "verzonden op"),
    "contact": ("lid", "klant", "aanvrager", "huurder", "contactgegevens"),
    "contact.full_name": ("naam", "volledige naam", "uw naam", "contactpersoon", "naam klant"),
    "contact.first_name": ("voornaam",),
    "contact.last_name": ("achternaam",),
    "contact.email": ("e-mailadres", "emailadres", "uw e-mail"),
    "contact.phone": ("gsm", "telefoon", "telefoonnummer", "mobiel", "mobiel nummer", "tel nr"),
    "contact.company": ("bedrijf", "bedrijfsnaam", "organisatie", "onderneming"),
    "requirements.desks": (
        "werkplekken",
        "aantal werkplekken",
        "aantal personen",
        "personen",
        "teamgrootte",
        "medewerkers",
        "aantal medewerkers",
        "bureaus",
    ),
    "requirements.workspace_type": (
        "type werkplek",
        "soort werkplek",
        "type kantoor",
        "soort ruimte",
        "type ruimte",
    ),
    "requirements.budget": ("huur", "prijs", "maandbudget", "huurprijs", "budget per maand", "maximale huur"),
    "requirements.start_date": (
        "startdatum",
        "ingangsdatum",
        "gewenste startdatum",
        "verhuisdatum",
        "per wanneer",
        "beschikbaar vanaf",
        "ingang",
        "gewenste ingangsdatum",
    ),
    "requirements.term_months": (
        "looptijd",
        "contractduur",
        "huurtermijn",
        "huurperiode",
        "gewenste looptijd",
    ),
    "requirements.size_sqm": ("oppervlakte", "vloeroppervlak", "aantal m2"),
    "requirements.area": ("stad", "plaats", "wijk", "regio", "gewenste locatie", "voorkeurslocatie"),
    "listing": ("object", "pand", "locatie", "vestiging", "ruimte", "advertentie", "gebouw"),
    "listing.id": ("object id", "objectnummer", "advertentienummer"),
    "listing.name": ("objectnaam", "naam locatie", "naam van de locatie", "naam ruimte"),
    "broker.contact": ("naam adviseur", "naam makelaar"),
    "listing.address": ("adres", "objectadres"),
    "broker": ("makelaar", "adviseur", "uw adviseur", "accountmanager", "behandelaar"),
    "message": ("bericht", "opmerkingen", "opmerking", "toelichting", "uw bericht", "aanvullende informatie"),
    "viewing_at": ("bezichtiging", "rondleiding", "gewenste bezichtiging", "bezichtigingsdatum", "afspraak"),
}

SPANISH: dict[str, tuple[str, ...]] = {
    "external_id": (
        "referencia",
        "número de solicitud",
        "id de solicitud",
        "n.º de solicitud",
        "número de referencia",
        "código de solicitud",
    ),
    "kind": ("tipo de solicitud", "tipo de consulta"),
    "received_at": ("recibida", "recibida el", "fecha de solicitud", "enviada el", "fecha de recepción"),
    "contact": ("miembro", "cliente", "solicitante", "interesado", "datos de contacto"),
    "contact.full_name": (
        "nombre",
        "nombre completo",
        "su nombre",
        "nombre y apellidos",
        "nombre del cliente",
        "nombre de contacto",
        "persona de contacto",
    ),
    "contact.first_name": ("nombre de pila",),
    "contact.last_name": ("apellido", "apellidos"),
    "contact.email": ("correo", "correo electrónico", "email de contacto", "e-mail de contacto"),
    "contact.phone": ("teléfono", "móvil", "celular", "número de teléfono", "teléfono móvil", "tlf", "tfno"),
    "contact.company": ("empresa", "compañía", "nombre de la empresa", "razón social", "organización"),
    "requirements.desks": (
        "puestos",
        "puestos de trabajo",
        "número de puestos",
        "personas",
        "número de personas",
        "empleados",
        "tamaño del equipo",
        "número de empleados",
        "plazas",
    ),
    "requirements.workspace_type": ("tipo de espacio", "tipo de oficina", "tipo de puesto"),
    "requirements.budget": (
        "presupuesto",
        "presupuesto mensual",
        "precio",
        "alquiler",
        "renta",
        "presupuesto máximo",
    ),
    "requirements.start_date": (
        "fecha de inicio",
        "fecha de entrada",
        "fecha de incorporación",
        "inicio",
        "incorporación",
        "fecha deseada",
        "disponibilidad",
        "fecha de mudanza",
        "entrada",
    ),
    "requirements.term_months": ("duración", "duración del contrato", "plazo", "permanencia", "periodo"),
    "requirements.size_sqm": ("superficie", "metros cuadrados", "tamaño"),
    "requirements.area": ("ciudad", "zona", "barrio", "ubicación preferida", "distrito"),
    "listing": ("espacio", "centro", "inmueble", "edificio", "anuncio", "espacio solicitado"),
    "listing.id": ("id del espacio", "referencia del anuncio", "referencia del espacio"),
    "listing.name": ("nombre del espacio", "nombre del centro", "nombre del edificio"),
    "broker.contact": ("nombre del asesor", "nombre del consultor", "nombre del agente"),
    "listing.address": ("dirección", "dirección del espacio"),
    "broker": ("asesor", "agente", "consultor", "su asesor", "gestor"),
    "message": ("mensaje", "comentarios", "observaciones", "notas", "su mensaje", "información adicional"),
    "viewing_at": ("visita", "fecha de visita", "visita solicitada", "cita"),
}

OTHER_LANGUAGES: tuple[Mapping[str, Iterable[str]], ...] = (SPANISH, DUTCH, FRENCH)


def multilingual(*, german_first: bool = False) -> LabelTable:
    """English, German, French, Dutch and Spanish labels in one table.

    French, Dutch and Spanish lose ties to English and German; between those two,
    English wins unless ``german_first`` (a German portal).
    """
    table = LabelTable({})
    for language in OTHER_LANGUAGES:
        table = table.extended(language)
    first, second = (ENGLISH, GERMAN) if german_first else (GERMAN, ENGLISH)
    return table.extended(first).extended(second)


def _words(table: Mapping[str, Iterable[str]]) -> frozenset[str]:
    return frozenset(normalise_label(label) for labels in table.values() for label in labels)


_ENGLISH_LABELS = _words(ENGLISH)
_LABELS_BY_REGION = tuple(
    (region, _words(table) - _ENGLISH_LABELS)
    for region, table in (("FR", FRENCH), ("NL", DUTCH), ("ES", SPANISH), ("DE", GERMAN))
)


def region_of_labels(labels: Iterable[str]) -> str | None:
    """The country whose language at least two of ``labels`` are in (``Téléphone``,
    ``Société`` → FR), when one language clearly leads; None for English or a mix.

    A hint for reading national phone numbers, never a replacement for the
    listing's or channel's country.
    """
    folded = {normalise_label(label) for label in labels}
    counts = sorted(((len(folded & words), region) for region, words in _LABELS_BY_REGION), reverse=True)
    (best, region), (second, _) = counts[0], counts[1]
    return region if best >= 2 and best > second else None
